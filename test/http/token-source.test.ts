/**
 * Token sources, by example (the properties are in `fuzz.test.ts` beside this file): what the
 * fuzz found stays fixed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tokenFromPageUrl, tokenFromRequest } from '../../src/http/token-source.ts';

const TOKEN = '0f0e8a5c-54b1-4b8e-9a3c-1d2e3f405162';

describe('token sources', () => {
  it('takes the token from a noVNC path longer than a token (found by the fuzz: the path itself was bounded to 255 characters)', () => {
    const path = `websockify?token=${TOKEN}&${'lang=en&'.repeat(40)}`;
    assert.ok(path.length > 255);
    assert.equal(tokenFromRequest(`/websockify?path=${encodeURIComponent(path)}`, undefined), TOKEN);
    assert.equal(tokenFromPageUrl(`/vnc_auto.html?path=${encodeURIComponent(path)}`), TOKEN);
    // the same path in a cookie (tempest) was always read
    assert.equal(tokenFromRequest('/websockify', `path=${encodeURIComponent(`?${path.split('?')[1]}`)}`), TOKEN);
  });

  it('still refuses a token itself longer than 255 characters, in the path as anywhere', () => {
    const long = 'a'.repeat(256);
    assert.equal(tokenFromRequest(`/websockify?path=${encodeURIComponent(`?token=${long}`)}`, undefined), undefined);
    assert.equal(tokenFromRequest(`/websockify?token=${long}`, undefined), undefined);
  });
});
