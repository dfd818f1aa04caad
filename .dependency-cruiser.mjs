/**
 * The arrows of DESIGN.md's layout table, checked by `test/layout.test.ts` (so by `npm test`):
 * `npx depcruise src` prints the same. Paths are relative to the directory cruised from, so the
 * test can run these rules on a fixture tree of the same shape (`test/fixtures/layout/`).
 *
 * Type-only imports count: an arrow is an arrow whether or not it survives compilation.
 * TypeScript 7 has no JavaScript compiler API yet, so dependency-cruiser parses with swc.
 */

/** The composition roots: they wire the parts and may import everything. */
const ROOTS = '^src/(gateway|workers)[.]ts$|^src/cli';


/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'No import cycles: a part that needs its importer is one part, or needs a contract between them.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'api-not-rfb-proxy',
      comment: 'The API sees the store, inventory and sessions contracts, never the RFB code or the proxy.',
      severity: 'error',
      from: { path: '^src/api/' },
      to: { path: '^src/(rfb|proxy)/' },
    },
    {
      name: 'web-not-proxy',
      comment: 'Console pages get what they need of the proxy through PagesDeps (wired by the gateway), or from src/http/.',
      severity: 'error',
      from: { path: '^src/web/' },
      to: { path: '^src/proxy/' },
    },
    {
      name: 'contracts-not-drivers',
      comment: 'The store, inventory and sessions contracts never import the proxy, the API or the RFB code.',
      severity: 'error',
      from: { path: '^src/(sessions|store|inventory)/' },
      to: { path: '^src/(proxy|api|rfb)/' },
    },
    {
      name: 'rfb-not-proxy-api',
      comment: 'The RFB security proxy talks to a socket-like seam; it never imports the proxy or the API.',
      severity: 'error',
      from: { path: '^src/rfb/' },
      to: { path: '^src/(proxy|api)/' },
    },
    {
      name: 'demo-only-rfb-types',
      comment: 'The demo VNC server is self-contained: of the rest of Porthole it imports only rfb/types.ts.',
      severity: 'error',
      from: { path: '^src/demo/' },
      to: { path: '^src/', pathNot: '^src/demo/|^src/rfb/types[.]ts$' },
    },
    {
      name: 'http-is-pure',
      comment: 'src/http/ holds pure functions of a request (token sources, request checks) for proxy and web: it imports only errors.ts.',
      severity: 'error',
      from: { path: '^src/http/' },
      to: { path: '^src/', pathNot: '^src/http/|^src/errors[.]ts$' },
    },
    {
      name: 'database-only-from-roots',
      comment: 'Storage kinds are chosen and opened by the composition roots only; the parts see the contracts.',
      severity: 'error',
      from: { pathNot: `${ROOTS}|^src/database/` },
      to: { path: '^src/database/' },
    },
  ],
  options: {
    parser: 'swc',
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/web/static/' },
  },
};
