// A small ISO 9660 image with one flat root directory: what a cloud-init NoCloud seed (`cidata`)
// needs, written in memory so that the controller needs no host tool (genisoimage, xorriso) and
// the bytes reach any host through the storage API. Both name spaces are written: the primary
// one (ISO 9660 level 2, upper case) for readers without Joliet, and Joliet (UCS-2), which Linux,
// Windows and blkid prefer, so that guests see `user-data`, `meta-data`, `network-config` as named.
//
// Layout (2048-byte sectors): 0-15 system area, 16 primary volume descriptor, 17 Joliet
// supplementary descriptor, 18 terminator, 19-22 path tables (L and M for each), 23 primary root
// directory, 24 Joliet root directory, then each file's data from a sector boundary.

export const SECTOR = 2048;
const FIRST_FILE_SECTOR = 25;
/**
 * The image is at least 128 KiB, zeros after the files (inside the volume, as genisoimage's and
 * xorriso's padding is): busybox's volume_id (findfs, and blkid in busybox-based guests) reads a
 * device's first 68 KiB to probe it and finds no label on a shorter one.
 */
export const MIN_SECTORS = 64;
/** The root directory is one sector: at most this many files, with names of at most MAX_NAME. */
export const MAX_FILES = 8;
export const MAX_NAME = 30;

export interface IsoFile {
  /** Lower-case letters, digits, '-', '_' and '.': the Joliet name; the primary name is derived. */
  name: string;
  content: Buffer;
}

export interface IsoOptions {
  /** Volume label (blkid's LABEL): d-characters and lower case, at most 32. */
  volumeId: string;
  /** Recorded as every date of the image, so the same input gives the same bytes. */
  date: Date;
}

const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]*$/;
const VOLUME_ID_PATTERN = /^[A-Za-z0-9_]{1,32}$/;

/** The image's bytes. Throws on names or labels the format cannot hold. */
export function buildIso9660(files: readonly IsoFile[], options: IsoOptions): Buffer {
  if (!VOLUME_ID_PATTERN.test(options.volumeId))
    throw new Error(`volume id ${JSON.stringify(options.volumeId)} is not 1-32 of A-Z a-z 0-9 _`);
  if (files.length > MAX_FILES) throw new Error(`${files.length} files; at most ${MAX_FILES} fit the root directory`);
  const names = new Set<string>();
  for (const file of files) {
    if (!NAME_PATTERN.test(file.name) || file.name.length > MAX_NAME)
      throw new Error(`file name ${JSON.stringify(file.name)} is not 1-${MAX_NAME} of a-z 0-9 . _ -`);
    if (names.has(file.name)) throw new Error(`file name ${file.name} is given twice`);
    names.add(file.name);
  }
  // Directory records are sorted by name (ECMA-119 9.3); the primary names sort like the Joliet ones.
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let next = FIRST_FILE_SECTOR;
  const extents = sorted.map((file) => {
    const sector = next;
    next += Math.max(1, Math.ceil(file.content.length / SECTOR));
    return sector;
  });
  const totalSectors = Math.max(next, MIN_SECTORS);
  const image = Buffer.alloc(totalSectors * SECTOR);
  const date = options.date;

  const primaryRoot = directory(
    23,
    sorted.map((file, i) => ({ name: Buffer.from(primaryName(file.name), 'ascii'), at: extents[i]!, file })),
    date,
  );
  const jolietRoot = directory(
    24,
    sorted.map((file, i) => ({ name: ucs2(file.name), at: extents[i]!, file })),
    date,
  );
  volumeDescriptor(
    image,
    16,
    { type: 1, volumeId: options.volumeId, joliet: false, root: 23, paths: 19 },
    totalSectors,
    date,
  );
  volumeDescriptor(
    image,
    17,
    { type: 2, volumeId: options.volumeId, joliet: true, root: 24, paths: 21 },
    totalSectors,
    date,
  );
  const terminator = 18 * SECTOR;
  image[terminator] = 255;
  image.write('CD001', terminator + 1, 'ascii');
  image[terminator + 6] = 1;
  for (const [sector, root, bigEndian] of [
    [19, 23, false],
    [20, 23, true],
    [21, 24, false],
    [22, 24, true],
  ] as const) {
    pathTable(image, sector * SECTOR, root, bigEndian);
  }
  primaryRoot.copy(image, 23 * SECTOR);
  jolietRoot.copy(image, 24 * SECTOR);
  sorted.forEach((file, i) => file.content.copy(image, extents[i]! * SECTOR));
  return image;
}

/** `user-data` → `USER_DATA.;1`: ISO 9660 level 2 d-characters, a dot and version 1. */
export function primaryName(name: string): string {
  const upper = name.toUpperCase().replace(/-/g, '_');
  const dot = upper.lastIndexOf('.');
  const base = dot < 0 ? upper : upper.slice(0, dot).replace(/\./g, '_');
  const extension = dot < 0 ? '' : upper.slice(dot + 1);
  return `${base}.${extension};1`;
}

function ucs2(text: string): Buffer {
  const out = Buffer.alloc(text.length * 2);
  for (let i = 0; i < text.length; i++) out.writeUInt16BE(text.charCodeAt(i), i * 2);
  return out;
}

function bothEndian32(buffer: Buffer, offset: number, value: number): void {
  buffer.writeUInt32LE(value, offset);
  buffer.writeUInt32BE(value, offset + 4);
}

function bothEndian16(buffer: Buffer, offset: number, value: number): void {
  buffer.writeUInt16LE(value, offset);
  buffer.writeUInt16BE(value, offset + 2);
}

/** A directory record (ECMA-119 9.1). `name` is 0x00 for '.', 0x01 for '..'. */
function record(name: Buffer, extent: number, size: number, isDirectory: boolean, date: Date): Buffer {
  const length = 33 + name.length + (name.length % 2 === 0 ? 1 : 0);
  const out = Buffer.alloc(length);
  out[0] = length;
  bothEndian32(out, 2, extent);
  bothEndian32(out, 10, size);
  out[18] = date.getUTCFullYear() - 1900;
  out[19] = date.getUTCMonth() + 1;
  out[20] = date.getUTCDate();
  out[21] = date.getUTCHours();
  out[22] = date.getUTCMinutes();
  out[23] = date.getUTCSeconds();
  out[24] = 0; // GMT
  out[25] = isDirectory ? 2 : 0;
  bothEndian16(out, 28, 1);
  out[32] = name.length;
  name.copy(out, 33);
  return out;
}

function directory(sector: number, entries: Array<{ name: Buffer; at: number; file: IsoFile }>, date: Date): Buffer {
  const records = [
    record(Buffer.from([0]), sector, SECTOR, true, date),
    record(Buffer.from([1]), sector, SECTOR, true, date),
    ...entries.map((entry) => record(entry.name, entry.at, entry.file.content.length, false, date)),
  ];
  const out = Buffer.concat(records);
  if (out.length > SECTOR) throw new Error('the file names do not fit one directory sector');
  return Buffer.concat([out, Buffer.alloc(SECTOR - out.length)]);
}

/** The path table of a lone root directory (ECMA-119 9.4): 10 bytes. */
function pathTable(image: Buffer, offset: number, rootSector: number, bigEndian: boolean): void {
  image[offset] = 1;
  if (bigEndian) {
    image.writeUInt32BE(rootSector, offset + 2);
    image.writeUInt16BE(1, offset + 6);
  } else {
    image.writeUInt32LE(rootSector, offset + 2);
    image.writeUInt16LE(1, offset + 6);
  }
}

const PATH_TABLE_SIZE = 10;

/** 17-byte decimal date and time (ECMA-119 8.4.26.1), GMT. */
function decimalDate(date: Date): Buffer {
  const pad = (n: number, width: number) => String(n).padStart(width, '0');
  const text =
    pad(date.getUTCFullYear(), 4) +
    pad(date.getUTCMonth() + 1, 2) +
    pad(date.getUTCDate(), 2) +
    pad(date.getUTCHours(), 2) +
    pad(date.getUTCMinutes(), 2) +
    pad(date.getUTCSeconds(), 2) +
    '00';
  return Buffer.concat([Buffer.from(text, 'ascii'), Buffer.from([0])]);
}

/** A text field padded with spaces: ASCII for the primary descriptor, UCS-2 for Joliet's. */
function field(image: Buffer, offset: number, length: number, text: string, joliet: boolean): void {
  if (joliet) {
    for (let i = 0; i < length / 2; i++)
      image.writeUInt16BE(i < text.length ? text.charCodeAt(i) : 0x20, offset + i * 2);
  } else {
    image.write(text.padEnd(length, ' '), offset, length, 'ascii');
  }
}

function volumeDescriptor(
  image: Buffer,
  sector: number,
  d: { type: 1 | 2; volumeId: string; joliet: boolean; root: number; paths: number },
  totalSectors: number,
  date: Date,
): void {
  const at = sector * SECTOR;
  image[at] = d.type;
  image.write('CD001', at + 1, 'ascii');
  image[at + 6] = 1;
  field(image, at + 8, 32, '', d.joliet);
  field(image, at + 40, 32, d.volumeId, d.joliet);
  bothEndian32(image, at + 80, totalSectors);
  if (d.joliet) image.write('%/E', at + 88, 'ascii'); // UCS-2 level 3
  bothEndian16(image, at + 120, 1);
  bothEndian16(image, at + 124, 1);
  bothEndian16(image, at + 128, SECTOR);
  bothEndian32(image, at + 132, PATH_TABLE_SIZE);
  image.writeUInt32LE(d.paths, at + 140);
  image.writeUInt32BE(d.paths + 1, at + 148);
  record(Buffer.from([0]), d.root, SECTOR, true, date).copy(image, at + 156);
  for (const [offset, length] of [
    [190, 128],
    [318, 128],
    [446, 128],
    [574, 128],
    [702, 37],
    [739, 37],
    [776, 37],
  ] as const) {
    field(image, at + offset, length - (d.joliet && length % 2 === 1 ? 1 : 0), '', d.joliet);
  }
  const stamp = decimalDate(date);
  stamp.copy(image, at + 813);
  stamp.copy(image, at + 830);
  Buffer.from('0000000000000000\0', 'ascii').copy(image, at + 847);
  stamp.copy(image, at + 864);
  image[at + 881] = 1;
}
