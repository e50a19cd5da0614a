// Pieces the broadcast history and detail share: status and priority badges
// (colour, icon and words together) and the per-hamlet outcome in words
// ("Thôn 3: 4/4 loa đã phát · 1 chờ loa kết nối").
import { t } from '../i18n/index.js';
import type { Broadcast, BroadcastStatus, DeliveryState, Priority, ZoneOutcome } from '../types.js';
import { Icon } from './ui.js';

const STATUS_LOOK: Record<BroadcastStatus, { cls: string; icon: 'check' | 'clock' | 'alert' | 'speaker' | 'offline' | 'empty' }> = {
  rendering: { cls: 'badge-muted', icon: 'clock' },
  scheduled: { cls: 'badge-muted', icon: 'clock' },
  sending: { cls: 'badge-warn', icon: 'clock' },
  playing: { cls: 'badge-info', icon: 'speaker' },
  done: { cls: 'badge-ok', icon: 'check' },
  partial: { cls: 'badge-warn', icon: 'alert' },
  failed: { cls: 'badge-bad', icon: 'offline' },
  cancelled: { cls: 'badge-muted', icon: 'empty' },
};

export function StatusBadge({ status }: { status: BroadcastStatus }) {
  const l = STATUS_LOOK[status];
  return <span class={`badge ${l.cls}`} data-testid="bc-status" data-status={status}><Icon name={l.icon} /> {t(`bc.status.${status}`)}</span>;
}

export function PriorityBadge({ priority }: { priority: Priority }) {
  if (priority === 'normal') return <span class="badge badge-muted" data-priority={priority}>{t('priority.normal')}</span>;
  return (
    <span class={`badge ${priority === 'emergency' ? 'badge-emergency' : 'badge-warn'}`} data-priority={priority}>
      {priority === 'emergency' && <Icon name="alert" />} {t(`priority.${priority}`)}
    </span>
  );
}

const DELIVERY_CLASS: Record<DeliveryState, string> = {
  pending: 'badge-muted', sent: 'badge-muted', acked: 'badge-muted', playing: 'badge-info', interrupted: 'badge-warn',
  played: 'badge-ok', failed: 'badge-bad', missed: 'badge-bad', cancelled: 'badge-muted',
};

export function DeliveryBadge({ state }: { state: DeliveryState }) {
  return <span class={`badge ${DELIVERY_CLASS[state]}`} data-state={state}>{t(`dl.${state}`)}</span>;
}

export function zoneOutcomeText(z: ZoneOutcome): string {
  const extra = [
    z.failed ? t('bc.zoneFailed', { count: z.failed }) : '',
    z.missed ? t('bc.zoneMissed', { count: z.missed }) : '',
    z.pending ? t('bc.zonePending', { count: z.pending }) : '',
  ].filter(Boolean);
  const main = t('bc.zoneOutcome', { name: z.name, played: z.played, targets: z.targets });
  return extra.length ? `${main} · ${extra.join(' · ')}` : main;
}

export function ZoneOutcomes({ broadcast }: { broadcast: Broadcast }) {
  return (
    <ul class="outcomes">
      {broadcast.zones.map((z) => {
        const all = z.targets > 0 && z.played === z.targets;
        const bad = z.failed + z.missed > 0;
        return (
          <li key={z.zoneId ?? '-'} data-zone={z.zoneId ?? ''} data-testid="zone-outcome" class={all ? 'ok' : bad ? 'bad' : ''}>
            <Icon name={all ? 'check' : bad ? 'alert' : 'clock'} /> {zoneOutcomeText(z)}
          </li>
        );
      })}
    </ul>
  );
}
