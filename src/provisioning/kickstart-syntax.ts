// How values become Kickstart text that pykickstart reads back as exactly those values.
//
// pykickstart (Anaconda's parser) reads a file with Python's str.splitlines(), which breaks
// lines not only at \n but also at \r, \v, \f, \x1c-\x1e, \x85, \u2028 and \u2029. Outside
// sections it splits each line with shlex (POSIX mode, '#' starts a comment even inside a
// word), and hands the words to argparse, which takes any word starting with '-' for an option.
// Inside a section, a line whose first non-blank character is '%' may end it (%end) or start
// another (%post, %packages, %include, %ksappend: Python's lstrip() also strips Unicode spaces).
//
// So every value that goes into a Kickstart line passes one of these gates, and a value that
// cannot pass is refused with the field path it came from, never escaped into something else:
//   - word():   a bare word of printable ASCII without whitespace, quotes, '\' or '#';
//   - quoted(): a double-quoted string (shlex undoes the \" and \\ escapes) for values with spaces;
//   - neither starts with '-' (an option to argparse) or '%' (a section keyword);
//   - no control character anywhere, including every line break splitlines() knows;
//   - scriptBody(): lines of user script, none starting with '%' after any leading whitespace.

/** A value that cannot be rendered safely; `path` is its field path (e.g. spec.packages[3]). */
export class KickstartValueError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = 'KickstartValueError';
  }
}

/** Every character Python's str.splitlines() ends a line at. */
export const LINE_BREAKS = /[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]/u;
/** C0 and C1 control characters, DEL, and the Unicode line and paragraph separators. */
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/u;
/** Printable ASCII that shlex leaves alone outside quotes: no space, quote, backslash or '#'. */
const BARE_WORD = /^[!$%&()*+,./0-9:;<=>?@A-Z[\]^_`a-z{|}~-]+$/;
const DIRECTIVE = /^[a-z]+$/;

const show = (value: string) => JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);

function checkCommon(value: string, path: string): void {
  if (value === '') throw new KickstartValueError(path, 'must not be empty');
  if (LINE_BREAKS.test(value))
    throw new KickstartValueError(
      path,
      `${show(value)} contains a line break, which would start a new Kickstart line; remove it`,
    );
  if (CONTROL.test(value))
    throw new KickstartValueError(path, `${show(value)} contains a control character; remove it`);
  if (value.startsWith('-'))
    throw new KickstartValueError(
      path,
      `${show(value)} starts with '-', which Kickstart would read as an option; remove the '-'`,
    );
  if (value.startsWith('%'))
    throw new KickstartValueError(
      path,
      `${show(value)} starts with '%', which Kickstart would read as a section keyword; remove the '%'`,
    );
}

/** `value` as one bare shlex word. */
export function word(value: string, path: string): string {
  checkCommon(value, path);
  if (!BARE_WORD.test(value)) {
    throw new KickstartValueError(
      path,
      `${show(value)} contains a space, quote, '\\', '#' or non-ASCII character, which this Kickstart field cannot hold; remove it`,
    );
  }
  return value;
}

/** `value` double-quoted for shlex: `"` and `\` escaped, everything else literal (also '#'). */
export function quoted(value: string, path: string): string {
  checkCommon(value, path);
  return `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** `--name=value`, the value bare or quoted. */
export function option(name: string, value: string, path: string, how: 'word' | 'quoted' = 'word'): string {
  return `--${name}=${how === 'word' ? word(value, path) : quoted(value, path)}`;
}

/** One command line: a directive and its already-checked words. */
export function command(directive: string, ...words: string[]): string {
  if (!DIRECTIVE.test(directive)) throw new Error(`not a Kickstart directive: ${show(directive)}`);
  const line = [directive, ...words].join(' ');
  // Unreachable when every word came through word(), quoted() or option(); a last guard.
  if (CONTROL.test(line)) throw new Error(`Kickstart line for ${directive} contains a control character`);
  return line;
}

/** A comment line; only text of the checked kinds goes in. */
export function comment(text: string, path: string): string {
  if (CONTROL.test(text))
    throw new KickstartValueError(path, `${show(text)} contains a control character or line break; remove it`);
  return `# ${text}`;
}

/**
 * The body of a %post script, ending with a newline. Scripts are user text by design: any
 * character but control characters (tab excepted), any line but one that Kickstart would take
 * for a section keyword.
 */
export function scriptBody(script: string, path: string): string {
  if (script.includes('\r'))
    throw new KickstartValueError(path, 'contains a carriage return (Windows line endings?); use LF line endings');
  const lines = script.split('\n');
  for (const [index, line] of lines.entries()) {
    const bad = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]/u.exec(line);
    if (bad) {
      const code = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
      throw new KickstartValueError(
        path,
        `line ${index + 1} contains the control character U+${code}, which Kickstart may read as a line break; remove it`,
      );
    }
    // Tab, space and \p{Z} are every character Python's lstrip() strips that is not refused
    // above, and the API's rule says the same; \s would also take U+FEFF, which lstrip() keeps.
    if (/^[\t \p{Z}]*%/u.test(line)) {
      throw new KickstartValueError(
        path,
        `line ${index + 1} starts with '%' (${show(line.trim())}): Kickstart would read it as a section keyword such as %end and ` +
          'end the script there; indenting does not help. Rewrite the line so it does not start with \'%\', e.g. echo "%end"',
      );
    }
  }
  return script.endsWith('\n') || script === '' ? script : `${script}\n`;
}
