// The `fazt` API and `console`, built on one native function:
// __fazt_host(op, argsJson) -> '{"ok": value}' or '{"error": message}'.
// Evaluated (from bytecode) in every fresh context, before the site's module.
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

// The request object handed to the handler.
globalThis.__fazt_request = (r) => {
  Object.defineProperty(r, "json", { value: function () { return JSON.parse(this.body); } });
  return Object.freeze(r);
};

// Normalises what a handler returned into {status, headers, body, json}.
globalThis.__fazt_response = (value) => {
  if (value === undefined) return { status: 204, headers: {}, body: "", json: false };
  if (typeof value === "string") return { status: 200, headers: {}, body: value, json: false };
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
};
