/**
 * @module rfb/auth/none
 * Security type None (RFC 6143 §7.2.1): nothing to do between choosing it and SecurityResult,
 * which a 3.8 server sends and a 3.3 or 3.7 server does not (the security proxy knows which).
 */
import { SecurityType, type AuthScheme } from '../types.ts';

export const noneAuth: AuthScheme = {
  name: 'none',
  securityType: SecurityType.None,
  unusable: () => null,
  handshake: async () => 'None',
};
