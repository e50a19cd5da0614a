// 24-hour sparklines as inline SVG from the 1440 one-minute points of
// GET /api/devices/:id/health: null is a gap, never a zero.
import { t } from '../i18n/index.js';
import { formatNumber } from '../format.js';

const W = 1440;
const H = 40;

export function Sparkline({ label, values, unit, digits = 0 }: { label: string; values: Array<number | null>; unit: string; digits?: number }) {
  const nums = values.filter((v): v is number => v !== null);
  if (!nums.length) {
    return (
      <div class="spark">
        <div class="spark-head"><span>{label}</span><span class="muted">{t('device.historyEmpty')}</span></div>
      </div>
    );
  }
  const min = Math.min(...nums);
  const max = Math.max(...nums);
  const span = max - min || 1;
  const step = W / Math.max(1, values.length - 1);
  let d = '';
  let pen = false;
  values.forEach((v, i) => {
    if (v === null) {
      pen = false;
      return;
    }
    const x = (i * step).toFixed(1);
    const y = (H - 3 - ((v - min) / span) * (H - 6)).toFixed(1);
    d += `${pen ? 'L' : 'M'}${x} ${y}`;
    pen = true;
  });
  const summary = t('device.spark.range', { min: formatNumber(min, digits, unit), max: formatNumber(max, digits, unit) });
  return (
    <div class="spark">
      <div class="spark-head"><span>{label}</span><span class="muted">{summary}</span></div>
      <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img" aria-label={`${label}: ${summary}`}>
        <path d={d} fill="none" stroke="currentColor" stroke-width="2" vector-effect="non-scaling-stroke" />
      </svg>
    </div>
  );
}

/** Online as coloured runs (and a percentage in text): green up, red down, blank unknown. */
export function OnlineStrip({ label, values }: { label: string; values: Array<boolean | null> }) {
  const runs: Array<{ from: number; to: number; v: boolean }> = [];
  values.forEach((v, i) => {
    if (v === null) return;
    const last = runs[runs.length - 1];
    if (last && last.v === v && last.to === i) last.to = i + 1;
    else runs.push({ from: i, to: i + 1, v });
  });
  const known = values.filter((v) => v !== null).length;
  const up = values.filter((v) => v === true).length;
  const step = W / Math.max(1, values.length);
  const summary = known ? t('device.spark.onlineShare', { percent: Math.round((up / known) * 100) }) : t('device.historyEmpty');
  return (
    <div class="spark">
      <div class="spark-head"><span>{label}</span><span class="muted">{summary}</span></div>
      <svg viewBox={`0 0 ${W} 14`} preserveAspectRatio="none" role="img" aria-label={`${label}: ${summary}`}>
        {runs.map((r) => <rect x={r.from * step} width={(r.to - r.from) * step} y={r.v ? 2 : 0} height={r.v ? 10 : 14} class={r.v ? 'run-up' : 'run-down'} />)}
      </svg>
    </div>
  );
}
