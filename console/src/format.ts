// Amounts are integer cents (fen) everywhere in the API; they are shown in yuan with exactly two
// decimals, computed with integers so no float rounding shows. Times are milliseconds since the
// epoch, shown in the shop's time zone (from the server's --console-time-zone).

export function yuan(cents: number): string {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(Math.trunc(cents));
  const whole = Math.floor(abs / 100).toLocaleString('en-US');
  const fraction = String(abs % 100).padStart(2, '0');
  return `${sign}¥${whole}.${fraction}`;
}

export function dateTime(ms: number, zone: string, language: string): string {
  return new Intl.DateTimeFormat(language, {
    timeZone: zone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  }).format(new Date(ms));
}

/** The calendar day (YYYY-MM-DD) of an instant in the zone. */
export function dayOf(ms: number, zone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(
    new Date(ms),
  );
}

/** The hour of day (0..23) of an instant in the zone. */
export function hourOf(ms: number, zone: string): number {
  const hour = new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', hourCycle: 'h23' }).format(new Date(ms));
  return Number(hour) % 24;
}

/** The zone if the browser knows it, else the default (a typo in the configuration must not blank the page). */
export function usableZone(zone: string): string {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return zone;
  } catch {
    return 'Asia/Shanghai';
  }
}
