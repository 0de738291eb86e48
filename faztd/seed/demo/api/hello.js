// A function: this file answers /api/hello. Try /api/hello?name=you.
// Module-level variables start fresh on every request; what should last
// goes in fazt.kv, this site's own storage.
export default async function (req) {
  const visits = fazt.kv.incr("visits"); // atomic: every visit counts
  console.log(`hello #${visits} from ${req.ip}`); // faztctl logs demo -f
  return { hello: req.query.name ?? "world", visits, site: fazt.site };
}
