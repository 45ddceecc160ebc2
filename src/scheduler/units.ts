// Human-readable sizes for scheduling messages: 4Gi, 512Mi, 1.5Gi.
const UNITS = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi'];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const rounded = Math.round(value * 10) / 10;
  return `${rounded}${UNITS[unit]}`;
}
