// The `fazt` API and `console`, built on one native function:
// __fazt_host(op, argsJson) -> '{"ok": value}' or '{"error": message}'.
// Evaluated (from bytecode) once per context, before any site module. What the
// engine needs from it (request/response shaping, the reset between requests)
// is exported, not left on globalThis where site code could reach it.
const host = globalThis.__fazt_host;
delete globalThis.__fazt_host;

function call(op, ...args) {
  const reply = JSON.parse(host(op, JSON.stringify(args)));
  if ("error" in reply) throw new Error(reply.error);
  return reply.ok;
}

function show(value) {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.stack ? `${value}\n${value.stack}` : String(value);
  try {
    const json = JSON.stringify(value);
    return json === undefined ? String(value) : json;
  } catch (_) {
    return String(value);
  }
}

function logger(level) {
  return (...parts) => call("log", level, parts.map(show).join(" "));
}

globalThis.console = Object.freeze({
  log: logger("info"),
  info: logger("info"),
  debug: logger("debug"),
  warn: logger("warn"),
  error: logger("error"),
});

globalThis.fazt = Object.freeze({
  // Read when used: the same prepared context can serve any request of a site.
  get site() { return call("info").site; },
  get version() { return call("info").fazt; },
  get deployment() { return call("info").version; },
  kv: Object.freeze({
    get: (key) => call("kv.get", key),
    set: (key, value, options) => call("kv.set", key, value, options ?? {}),
    delete: (key) => call("kv.delete", key),
    list: (prefix) => call("kv.list", prefix ?? ""),
    // Atomic: concurrent requests each count (get + set would lose updates).
    incr: (key, by) => call("kv.incr", key, by ?? 1),
    // Sets `value` only if the key holds `expected` (null: absent); true if it did.
    compareAndSet: (key, expected, value, options) =>
      call("kv.cas", key, expected ?? null, value, options ?? {}),
  }),
  docs: Object.freeze({
    insert: (collection, doc) => call("docs.insert", collection, doc),
    find: (collection, query, options) => call("docs.find", collection, query ?? {}, options ?? {}),
    findOne: (collection, query) => call("docs.findOne", collection, query ?? {}),
    update: (collection, query, changes) => call("docs.update", collection, query ?? {}, changes),
    delete: (collection, query) => call("docs.delete", collection, query ?? {}),
    count: (collection, query) => call("docs.count", collection, query ?? {}),
  }),
  env: Object.freeze({
    get: (name, fallback) => call("env.get", name, fallback ?? null),
  }),
  realtime: Object.freeze({
    publish: (channel, data) => call("realtime.publish", channel, data),
    count: (channel) => call("realtime.count", channel),
    presence: (channel) => call("realtime.presence", channel),
  }),
});

// What every request object inherits: `req.json()` parses the body. The
// engine builds each request as an object with this prototype.
// (Frozen with the built-ins by the lockdown below.)
export const requestPrototype = {
  json() {
    return JSON.parse(this.body);
  },
};

// Normalises what a handler returned into {status, headers, body, json}.
// (A plain string, the common case, is handled by the engine directly.)
export function response(value) {
  if (value === undefined) return { status: 204, headers: {}, body: "", json: false };
  if (typeof value === "function" || typeof value === "symbol" || typeof value === "bigint") {
    throw new TypeError(`the handler returned a ${typeof value}, which cannot be sent`);
  }
  const keys = value !== null && typeof value === "object" && !Array.isArray(value) ? Object.keys(value) : null;
  const shaped = keys && keys.length > 0 && keys.every((k) => k === "status" || k === "headers" || k === "body") &&
    ("status" in value || "body" in value);
  if (!shaped) return { status: 200, headers: {}, body: JSON.stringify(value), json: true };
  const status = value.status ?? 200;
  if (!Number.isInteger(status) || status < 100 || status > 599) {
    throw new TypeError(`status must be a whole number from 100 to 599, not ${show(status)}`);
  }
  const headers = {};
  for (const [k, v] of Object.entries(value.headers ?? {})) headers[String(k)] = String(v);
  let body = value.body ?? "";
  let json = false;
  if (typeof body !== "string") {
    body = JSON.stringify(body);
    json = true;
  }
  return { status, headers, body, json };
}

// ---------------------------------------------------------------------------
// Lockdown: one context serves many requests of a site, one after another, and
// no request may see what an earlier one left behind (DESIGN.md §4). Module-level
// state is handled by the engine (every request gets fresh module instances);
// this part handles everything global:
//
// - built-ins: everything reachable from globalThis (and the hidden intrinsics
//   such as %GeneratorFunction%) is frozen, and the standard globals are
//   read-only, so `Array.prototype.x = 1` or `JSON = {}` throws a TypeError;
// - new globals (`globalThis.x = 1`) are deleted by `reset()` after each request;
// - `eval` is disabled: an indirect eval can declare global `let`/`const`
//   bindings that nothing could remove (`new Function` cannot, and still works);
// - FinalizationRegistry is not offered: its callbacks run whenever the
//   collector decides, which can be during a later request;
// - Error.stackTraceLimit and Error.prepareStackTrace are fixed: their setters
//   change the whole context.
//
// Plain freezing breaks ordinary code through the "override mistake": assigning
// `obj.toString = f` or `this.name = "MyError"` throws when the inherited
// property is frozen. As SES does, those properties become accessors whose
// setter defines the property on the object assigned to.
export const reset = (() => {
  const { defineProperty, getOwnPropertyDescriptor, getPrototypeOf, freeze, isExtensible } = Object;
  const { ownKeys, deleteProperty, setPrototypeOf } = Reflect;
  const global = globalThis;

  delete global.FinalizationRegistry;
  const disabledEval = {
    eval() {
      throw new EvalError("eval() is not available in Fazt functions; code comes only from the deployed files");
    },
  }.eval;
  defineProperty(global, "eval", { value: disabledEval });
  for (const key of ["stackTraceLimit", "prepareStackTrace"]) {
    const desc = getOwnPropertyDescriptor(Error, key);
    if (desc && desc.configurable) defineProperty(Error, key, { value: Error[key], writable: false });
  }

  function allowOverride(proto, key) {
    const desc = getOwnPropertyDescriptor(proto, key);
    if (!desc || !("value" in desc) || !desc.configurable) return;
    const value = desc.value;
    const name = String(typeof key === "symbol" ? key.description : key);
    defineProperty(proto, key, {
      get: { [name]() { return value; } }[name],
      set: {
        [name](replacement) {
          if (this === proto) {
            throw new TypeError(`Cannot assign to read only property '${name}' of a built-in (built-ins are frozen)`);
          }
          defineProperty(this, key, { value: replacement, writable: true, enumerable: true, configurable: true });
        },
      }[name],
      enumerable: desc.enumerable,
      configurable: false,
    });
  }
  for (const key of ownKeys(Object.prototype)) allowOverride(Object.prototype, key);
  // Error, TypeError, ..., and QuickJS's InternalError, AggregateError, SuppressedError.
  const errors = ownKeys(global)
    .filter((key) => typeof key === "string" && key.endsWith("Error") && typeof global[key] === "function")
    .map((key) => global[key]);
  for (const E of errors) {
    for (const key of ["name", "message", "constructor", "toString"]) allowOverride(E.prototype, key);
  }
  for (const C of [Function, Array, Promise, Date, RegExp]) {
    for (const key of ["constructor", "toString"]) allowOverride(C.prototype, key);
  }

  // Freeze every object reachable from the roots, through properties
  // (values, getters, setters) and prototypes; globalThis itself stays open.
  // About 600 objects and 2,000 properties: each is visited once.
  const seen = new Set([global]);
  const pending = [];
  const visit = (value) => {
    if (((typeof value === "object" && value !== null) || typeof value === "function") && !seen.has(value)) {
      seen.add(value);
      pending.push(value);
    }
  };
  const descriptorsOf = Object.getOwnPropertyDescriptors;
  const visitProperties = (object) => {
    const descs = descriptorsOf(object);
    for (const key of ownKeys(descs)) {
      const desc = descs[key];
      if ("value" in desc) {
        visit(desc.value);
      } else {
        visit(desc.get);
        visit(desc.set);
      }
    }
  };
  visitProperties(global);
  const generator = function* () {};
  const asyncGenerator = async function* () {};
  [
    generator, generator(), asyncGenerator, asyncGenerator(), async function () {}, async () => {},
    [][Symbol.iterator](), new Map()[Symbol.iterator](), new Set()[Symbol.iterator](), ""[Symbol.iterator](),
    /x/[Symbol.matchAll]("x"), (function () { return arguments; })(),
    requestPrototype,
  ].forEach(visit);
  if (typeof Iterator === "function") {
    if (typeof Iterator.from === "function") visit(Iterator.from({ next: () => ({ done: true }) }));
    if (typeof Iterator.prototype.map === "function") visit([].values().map((x) => x));
  }
  while (pending.length > 0) {
    const value = pending.pop();
    freeze(value);
    visit(getPrototypeOf(value));
    visitProperties(value);
  }
  for (const key of ownKeys(global)) {
    const desc = getOwnPropertyDescriptor(global, key);
    defineProperty(global, key, "value" in desc ? { writable: false, configurable: false } : { configurable: false });
  }

  const baseline = new Set(ownKeys(global));
  const baselineProto = getPrototypeOf(global);
  // After a request that changed the global object (the engine checks that
  // cheaply first): remove what it added. False when the context cannot be
  // brought back (a global it made undeletable, a global object it sealed);
  // the engine then throws the context away.
  return function reset() {
    let clean = true;
    const keys = ownKeys(global);
    if (keys.length !== baseline.size) {
      for (const key of keys) {
        if (!baseline.has(key) && !deleteProperty(global, key)) clean = false;
      }
    }
    if (getPrototypeOf(global) !== baselineProto && !setPrototypeOf(global, baselineProto)) clean = false;
    return clean && isExtensible(global);
  };
})();
