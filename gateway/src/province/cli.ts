// Renders the province link's broker config (docs/scale-out.md):
//   npx tsx gateway/src/province/cli.ts bridge --ns xa-an-phu --address mqtt.tinh.example.vn:8883 \
//     --user bridge-xa-an-phu [--cafile /etc/mosquitto/certs/province-ca.pem]   (password from $BRIDGE_PASSWORD)
//   npx tsx gateway/src/province/cli.ts province-acl --commune xa-an-phu=bridge-xa-an-phu \
//     --commune xa-binh-minh=bridge-xa-binh-minh --province-user province-ops
// Prints to stdout; a bad flag is named on stderr, exit 2. The password comes
// from the environment so it is not in the shell history or `ps`.
import { parseArgs } from 'node:util';
import { Topics } from '../mqtt/topics.js';
import { renderMosquittoBridge, renderProvinceAcl } from './bridge.js';

const NS = /^[a-z0-9][a-z0-9-]{0,31}$/;
const USER = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function fail(msg: string): never {
  process.stderr.write(`${msg}\n`);
  process.exit(2);
}

const [cmd, ...rest] = process.argv.slice(2);
if (cmd === 'bridge') {
  const { values } = parseArgs({ args: rest, options: { ns: { type: 'string' }, address: { type: 'string' }, user: { type: 'string' }, cafile: { type: 'string' }, 'clean-session': { type: 'boolean' } } });
  if (!values.ns || !NS.test(values.ns)) fail('--ns: required, the commune\'s topic root (settings ns), e.g. xa-an-phu');
  if (!values.address || !/^[A-Za-z0-9.-]+:\d{1,5}$/.test(values.address)) fail('--address: required, host:port of the provincial broker');
  if (!values.user || !USER.test(values.user)) fail('--user: required, the commune\'s username on the provincial broker');
  const password = process.env.BRIDGE_PASSWORD;
  if (!password) fail('BRIDGE_PASSWORD: set it in the environment (the bridge\'s password on the provincial broker)');
  process.stdout.write(renderMosquittoBridge(new Topics(values.ns), {
    address: values.address, remoteUsername: values.user, remotePassword: password, cafile: values.cafile, cleanSession: values['clean-session'] ?? false,
  }));
} else if (cmd === 'province-acl') {
  const { values } = parseArgs({ args: rest, options: { commune: { type: 'string', multiple: true }, 'province-user': { type: 'string', multiple: true } } });
  const communes = (values.commune ?? []).map((c, i) => {
    const [ns, user] = c.split('=');
    if (!ns || !NS.test(ns) || !user || !USER.test(user)) fail(`--commune[${i}]: "${c}" is not <ns>=<bridge user>`);
    return { topics: new Topics(ns), bridgeUser: user };
  });
  if (!communes.length) fail('--commune: give at least one <ns>=<bridge user>');
  const users = values['province-user'] ?? [];
  users.forEach((u, i) => { if (!USER.test(u)) fail(`--province-user[${i}]: "${u}" is not a username`); });
  process.stdout.write(renderProvinceAcl(communes, users));
} else {
  fail('usage: cli.ts bridge --ns <root> --address <host:port> --user <name> [--cafile <pem>] [--clean-session]\n       cli.ts province-acl --commune <ns>=<bridge user> ... [--province-user <name> ...]');
}
