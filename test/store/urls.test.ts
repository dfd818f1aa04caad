/**
 * `[database] connection` URLs as nova.conf writes them (SQLAlchemy's forms), which store each
 * one picks, and that a URL in a message never carries its password.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redactUrl, storeKind } from '../../src/database/url.ts';

describe('store URLs', () => {
  it('picks the store by scheme, SQLAlchemy\'s +driver suffix ignored', () => {
    const cases: Array<[string, string]> = [
      ['sqlite:///porthole.db', 'sqlite'],
      ['sqlite:////var/lib/porthole/porthole.db', 'sqlite'],
      ['postgresql://porthole:pw@db/porthole', 'postgres'],
      ['postgresql+psycopg2://nova:pw@controller/nova_cell1', 'postgres'],
      ['postgres://db/porthole', 'postgres'],
      ['mysql+pymysql://nova:pw@controller/nova_cell1?charset=utf8', 'mysql'],
      ['mysql://root@127.0.0.1/porthole', 'mysql'],
      ['mariadb+mariadbconnector://u@h/db', 'mysql'],
      ['redis://127.0.0.1:6379/0', 'redis'],
      ['rediss://:pw@redis.example.com:6380/2', 'redis'],
    ];
    for (const [url, kind] of cases) assert.equal(storeKind(url), kind, url);
  });

  it('refuses a scheme it cannot open, naming it and without the password', () => {
    assert.throws(() => storeKind('oracle://scott:tiger@db/nova'), (err: Error) => /unknown database scheme "oracle"/.test(err.message) && !err.message.includes('tiger'));
  });

  it('takes the password out of a URL', () => {
    assert.equal(redactUrl('mysql+pymysql://nova:s3cr%40t@controller/nova_cell1?charset=utf8'), 'mysql+pymysql://nova:***@controller/nova_cell1?charset=utf8');
    assert.equal(redactUrl('redis://:s3cret@127.0.0.1:6379/0'), 'redis://:***@127.0.0.1:6379/0');
    assert.equal(redactUrl('postgresql://porthole@db/porthole'), 'postgresql://porthole@db/porthole');
  });
});
