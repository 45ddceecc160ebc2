// Times as Kubernetes writes them in status and Events: RFC 3339 in UTC, whole seconds.

/** `2026-12-07T10:42:48Z`. */
export function rfc3339(date: Date | number): string {
  return new Date(date).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
