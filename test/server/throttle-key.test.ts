// The auth throttle counts an IPv6 client by its /64 network: one host usually
// holds a whole /64, and counting each address would give it endless allowances.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientOf } from '../../src/http/auth-throttle.ts';

const key = (address: string) => clientOf({ socket: { remoteAddress: address } });

test('IPv4 clients count per address, IPv6 clients per /64 network', () => {
  assert.equal(key('127.0.0.1'), '127.0.0.1');
  assert.equal(key('::ffff:10.0.0.1'), '::ffff:10.0.0.1');
  assert.equal(key('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(key('2001:db8:0:0:ffff::2'), key('2001:0db8:0000:0000:1:2:3:4'));
  assert.notEqual(key('2001:db8:0:1::1'), key('2001:db8:0:2::1'));
  assert.equal(key('fe80::1%eth0'), 'fe80:0:0:0::/64');
});
