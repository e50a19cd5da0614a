// Typed event bus: services talk through named events instead of holding each
// other, so start order and tests stay simple. Listeners' errors are caught and
// logged: one faulty listener must not stop delivery to the rest.
import type { Alarm, Telemetry } from './types.js';
import type { BroadcastView } from '../broadcast/service.js';

export interface GatewayEvents {
  /** A device's MQTT session opened or closed (embedded broker or external state/LWT). */
  'device.link': { deviceId: string; connected: boolean; at: number };
  /** Derived presence changed (live link + heartbeats). */
  'device.presence': { deviceId: string; online: boolean; at: number; reason: string };
  /** The device can receive commands now: it subscribed to its command topic, or announced itself with a live state message. */
  'device.ready': { deviceId: string; at: number; via: 'subscribe' | 'state' };
  'device.state': { deviceId: string; online: boolean; fw?: string; model?: string; at: number; retained: boolean };
  'device.telemetry': { deviceId: string; telemetry: Telemetry; at: number };
  'device.ack': { deviceId: string; id: string; ok: boolean; error?: string; at: number };
  'device.event': { deviceId: string; event: Record<string, unknown> & { type: string }; at: number };
  /** `credentials`: the secret or zone changed, so the broker session must be re-authorised. */
  'device.changed': { deviceId: string; change: 'created' | 'updated' | 'deleted'; credentials?: boolean };
  'alarm.opened': Alarm;
  'alarm.cleared': Alarm;
  'alarm.acknowledged': Alarm;
  /** A broadcast's status or outcome changed (throttled per broadcast; the final state always goes out). */
  'broadcast.updated': BroadcastView;
  /** The programme files changed (reload, API edit) or an occurrence was journalled (pre-staged, late, missed...). */
  'schedule.changed': { what: 'programme' | 'occurrence'; key?: string; event?: string; at: number };
  /** A camera was added, changed or removed in the registry (the recorders follow). */
  'camera.changed': { cameraId: string; change: 'created' | 'updated' | 'deleted' };
  /** An ONVIF event from a camera: motion or tamper started (`active`) or ended. `at`: the camera's time corrected by its clock offset. */
  'camera.event': { cameraId: string; kind: 'motion' | 'tamper'; active: boolean; at: number; topic: string };
  /** A tag was created or changed (motion, tamper, low rating, complaint, bookmark). */
  'tag.changed': { tagId: string; cameraIds: string[]; type: string; change: 'created' | 'updated' | 'deleted' };
  /** A complaint case changed (status, notes, tags, exports). */
  'case.changed': { caseId: string; at: number };
  /** An export's progress or final state. */
  'export.progress': { exportId: string; state: 'running' | 'done' | 'failed'; percent: number; error?: string };
}

type Listener<T> = (payload: T) => void;

export class EventBus {
  private listeners = new Map<keyof GatewayEvents, Set<Listener<never>>>();
  constructor(private onError: (err: unknown, event: string) => void = () => {}) {}

  on<K extends keyof GatewayEvents>(event: K, fn: Listener<GatewayEvents[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => set!.delete(fn as Listener<never>);
  }

  emit<K extends keyof GatewayEvents>(event: K, payload: GatewayEvents[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of set) {
      try {
        (fn as Listener<GatewayEvents[K]>)(payload);
      } catch (err) {
        this.onError(err, event);
      }
    }
  }
}
