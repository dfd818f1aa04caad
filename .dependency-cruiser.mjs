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

/** A forbidden arrow: from files matching `from` to files matching `to` (dependency-cruiser's path conditions). */
const forbid = (name, comment, from, to) => ({ name, comment, severity: 'error', from, to });

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    forbid('no-cycles', 'No import cycles: a part that needs its importer is one part, or needs a contract between them.', {}, { circular: true }),
    forbid('api-not-rfb-proxy', 'The API sees the store, inventory and sessions contracts, never the RFB code or the proxy.', { path: '^src/api/' }, { path: '^src/(rfb|proxy)/' }),
    forbid('web-not-proxy', 'Console pages get what they need of the proxy through PagesDeps (wired by the gateway), or from src/http/.', { path: '^src/web/' }, { path: '^src/proxy/' }),
    forbid('contracts-not-drivers', 'The store, inventory and sessions contracts never import the proxy, the API or the RFB code.', { path: '^src/(sessions|store|inventory)/' }, { path: '^src/(proxy|api|rfb)/' }),
    forbid('rfb-not-proxy-api', 'The RFB security proxy talks to a socket-like seam; it never imports the proxy or the API.', { path: '^src/rfb/' }, { path: '^src/(proxy|api)/' }),
    forbid('demo-only-rfb-types', 'The demo VNC server is self-contained: of the rest of Porthole it imports only RFB types: rfb/types.ts, and the pixel formats it shares with the server role of shared consoles (rfb/shared/pixel-format.ts, rfb/framebuffer/types.ts).', { path: '^src/demo/' }, { path: '^src/', pathNot: '^src/demo/|^src/rfb/types[.]ts$|^src/rfb/shared/pixel-format[.]ts$|^src/rfb/framebuffer/types[.]ts$' }),
    forbid('http-is-pure', 'src/http/ holds what every HTTP listener shares (token sources, request checks, TLS settings and certificate reload) for proxy, web and api: it imports only errors.ts.', { path: '^src/http/' }, { path: '^src/', pathNot: '^src/http/|^src/errors[.]ts$' }),
    forbid('database-only-from-roots', 'Storage kinds are chosen and opened by the composition roots only; the parts see the contracts.', { pathNot: `${ROOTS}|^src/database/` }, { path: '^src/database/' }),
  ],
  options: {
    parser: 'swc',
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/web/static/' },
  },
};
