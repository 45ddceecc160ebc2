// Reads the root directory of an ISO 9660 image back, from the volume descriptors on, the way a
// kernel does: for tests of what src/provisioning/iso9660.ts writes (and of seed volumes on hosts).
const SECTOR = 2048;

export interface IsoListing {
  /** The primary volume descriptor's volume id, spaces trimmed. */
  volumeId: string;
  /** The Joliet descriptor's volume id, or undefined without Joliet. */
  jolietVolumeId?: string;
  /** Files of the primary root directory by their ISO 9660 name (e.g. USER_DATA.;1). */
  primary: Map<string, Buffer>;
  /** Files of the Joliet root directory by name, or empty without Joliet. */
  joliet: Map<string, Buffer>;
  /** Volume space size from the primary descriptor, in bytes. */
  declaredBytes: number;
}

export function readIso9660(image: Buffer): IsoListing {
  let primary: Buffer | undefined;
  let joliet: Buffer | undefined;
  for (let sector = 16; (sector + 1) * SECTOR <= image.length; sector++) {
    const d = image.subarray(sector * SECTOR, (sector + 1) * SECTOR);
    if (d.toString('ascii', 1, 6) !== 'CD001') throw new Error(`sector ${sector} is not a volume descriptor`);
    if (d[0] === 255) break;
    if (d[0] === 1) primary = d;
    if (d[0] === 2 && d.toString('ascii', 88, 91) === '%/E') joliet = d;
  }
  if (!primary) throw new Error('no primary volume descriptor');
  const listing: IsoListing = {
    volumeId: primary.toString('ascii', 40, 72).trimEnd(),
    primary: rootFiles(image, primary, (name) => name.toString('ascii')),
    joliet: new Map(),
    declaredBytes: primary.readUInt32LE(80) * primary.readUInt16LE(128),
  };
  if (primary.readUInt32BE(84) !== primary.readUInt32LE(80)) throw new Error('volume space size: LE and BE differ');
  if (joliet) {
    listing.jolietVolumeId = ucs2(joliet.subarray(40, 72)).trimEnd();
    listing.joliet = rootFiles(image, joliet, ucs2);
  }
  return listing;
}

function ucs2(bytes: Buffer): string {
  let text = '';
  for (let i = 0; i + 1 < bytes.length; i += 2) text += String.fromCharCode(bytes.readUInt16BE(i));
  return text;
}

function rootFiles(image: Buffer, descriptor: Buffer, decode: (name: Buffer) => string): Map<string, Buffer> {
  const root = descriptor.subarray(156, 190);
  const extent = root.readUInt32LE(2);
  const size = root.readUInt32LE(10);
  const dir = image.subarray(extent * SECTOR, extent * SECTOR + size);
  const files = new Map<string, Buffer>();
  for (let at = 0; at < dir.length && dir[at]! > 0; at += dir[at]!) {
    const rec = dir.subarray(at, at + dir[at]!);
    const name = rec.subarray(33, 33 + rec[32]!);
    if (name.length === 1 && name[0]! <= 1) continue; // '.' and '..'
    if ((rec[25]! & 2) !== 0) throw new Error('unexpected subdirectory');
    const start = rec.readUInt32LE(2) * SECTOR;
    const length = rec.readUInt32LE(10);
    if (rec.readUInt32BE(6) !== rec.readUInt32LE(2) || rec.readUInt32BE(14) !== length)
      throw new Error(`record ${decode(name)}: LE and BE fields differ`);
    if (start + length > image.length) throw new Error(`file ${decode(name)} runs past the image`);
    files.set(decode(name), image.subarray(start, start + length));
  }
  return files;
}
