// The message of something thrown, for conditions and Events (a non-Error as its string).
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
