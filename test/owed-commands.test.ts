// Commands a device has not acked survive a gateway (and broker) restart and
// are re-sent when the device comes back; acked ones are never re-sent.
import { afterAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { connectDevice, removeDir, startGateway, waitFor, type TestGateway } from './helpers/gateway.js';

let t: TestGateway | null = null;
afterAll(async () => {
  await t?.close();
  if (t) await removeDir(t.dir);
});

function actAsSpeaker(c: MqttClient, id: string, log: Array<{ id: string; type: string }>): void {
  c.on('message', (_topic, payload) => {
    const cmd = JSON.parse(payload.toString()) as { id: string; type: string };
    log.push(cmd);
    void c.publishAsync(`commune/dev/${id}/ack`, JSON.stringify({ id: cmd.id, ok: true }), { qos: 1 });
  });
}

describe('owed commands', () => {
  it('keeps a volume command for an offline speaker across a gateway restart and delivers it on reconnect', async () => {
    t = await startGateway({ commands: { ackTimeoutSeconds: 0.3 } });
    const { secret } = await t.gw.ctx.registry.createDevice({ id: 'spk-owed', type: 'speaker', name: 'Loa chợ' });
    const r = await t.gw.ctx.dispatcher.send('spk-owed', 'volume', { level: 33 });
    expect(r).toMatchObject({ status: 'timeout', owed: true });
    // Ephemeral commands are not replayed later (a reboot two days late would surprise everyone).
    const r2 = await t.gw.ctx.dispatcher.send('spk-owed', 'test-tone', { seconds: 2 });
    expect(r2).toMatchObject({ status: 'timeout', owed: false });
    expect(t.gw.ctx.dispatcher.owed('spk-owed').map((c) => c.type)).toEqual(['volume']);

    // Restart: new process state, new embedded broker (aedes forgot everything), same data dir.
    const dir = t.dir;
    await t.close();
    t = await startGateway({ commands: { ackTimeoutSeconds: 0.3 } }, dir);
    expect(t.gw.ctx.dispatcher.owed('spk-owed')).toHaveLength(1);

    // The speaker subscribes after CONNACK; the gateway re-sends as soon as it sees that subscription.
    const got: Array<{ id: string; type: string; level?: number }> = [];
    const c = await connectDevice(t.mqttUrl, 'spk-owed', secret, { clean: true });
    actAsSpeaker(c, 'spk-owed', got);
    await c.subscribeAsync('commune/dev/spk-owed/cmd', { qos: 1 });
    await waitFor(() => t!.gw.ctx.dispatcher.owed('spk-owed').length === 0, 3000, 'owed cleared by ack');
    expect(got.map((g) => g.type)).toContain('volume');
    expect(got.find((g) => g.type === 'volume')).toMatchObject({ level: 33 });
    expect(got.some((g) => g.type === 'test-tone')).toBe(false);

    // Once acked it is never sent again.
    const before = got.length;
    await t.gw.ctx.dispatcher.resendOwed('spk-owed');
    await new Promise((r) => setTimeout(r, 200));
    expect(got.length).toBe(before);
    c.end(true);
  });

  it('re-sends automatically as soon as the device subscribes to its command topic, and only what is still owed', async () => {
    const { secret } = await t!.gw.ctx.registry.createDevice({ id: 'spk-auto', type: 'speaker', name: 'Loa' });
    const r = await t!.gw.ctx.dispatcher.send('spk-auto', 'volume', { level: 80 });
    expect(r.status).toBe('timeout');
    const got: Array<{ id: string; type: string }> = [];
    const c = await connectDevice(t!.mqttUrl, 'spk-auto', secret);
    actAsSpeaker(c, 'spk-auto', got);
    await c.subscribeAsync('commune/dev/spk-auto/cmd', { qos: 1 });
    await waitFor(() => t!.gw.ctx.dispatcher.owed('spk-auto').length === 0, 5000, 'auto re-send acked');
    expect(got[0]).toMatchObject({ type: 'volume' });
    const n = got.length;
    await c.publishAsync('commune/dev/spk-auto/state', JSON.stringify({ online: true }), { qos: 1, retain: true });
    await new Promise((r) => setTimeout(r, 200));
    expect(got.length).toBe(n); // a live state is a ready signal too, but nothing is owed any more
    c.end(true);
  });

  it('a device that subscribes and then announces itself (the contract) gets each owed command once, not once per signal', async () => {
    await t?.close();
    t = await startGateway({ commands: { ackTimeoutSeconds: 0.2 } });
    const { secret } = await t.gw.ctx.registry.createDevice({ id: 'spk-once', type: 'speaker', name: 'Loa đình' });
    expect(await t.gw.ctx.dispatcher.send('spk-once', 'volume', { level: 40 })).toMatchObject({ owed: true });
    const c = await connectDevice(t.mqttUrl, 'spk-once', secret, { clean: true });
    const got: string[] = [];
    c.on('message', (_topic, payload) => got.push((JSON.parse(payload.toString()) as { id: string }).id));
    // Subscribe, then the live state: both say "ready" on the embedded broker; the command is not acked yet.
    await c.subscribeAsync('commune/dev/spk-once/cmd', { qos: 1 });
    await c.publishAsync('commune/dev/spk-once/state', JSON.stringify({ online: true, fw: '1.0.0' }), { qos: 1, retain: true });
    await waitFor(() => got.length >= 1, 3000, 'the owed command');
    await new Promise((r) => setTimeout(r, 600));
    expect(got).toHaveLength(1);
    c.end(true);
  });

  it('rejects an invalid command before it is stored', async () => {
    await expect(t!.gw.ctx.dispatcher.send('spk-auto', 'volume', { level: 400 })).rejects.toThrow(/level: must be <= 100/);
    expect(t!.gw.ctx.dispatcher.owed('spk-auto')).toHaveLength(0);
  });
});
