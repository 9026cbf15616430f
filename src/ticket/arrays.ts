/**
 * Writers for the two array containers other tools read without ticketsweep: NumPy's `.npz` (a zip of `.npy`
 * files, stored without compression) and safetensors (an 8-byte little-endian header length, a JSON header,
 * then the raw little-endian data). No dependencies: both formats are a few lines.
 */

/** A named array: float32 or uint8 data, row-major, of `shape`. */
export interface NamedArray {
  name: string;
  shape: number[];
  data: Float32Array | Uint8Array;
}

const dtypeOf = (a: NamedArray) =>
  a.data instanceof Float32Array ? { npy: "<f4", st: "F32" } : { npy: "|u1", st: "U8" };

/** The array's bytes, little-endian (every platform Deno runs on is little-endian; checked). */
function bytesOf(a: NamedArray): Uint8Array {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error("big-endian hosts are not supported");
  return new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
}

function checkShape(a: NamedArray): void {
  if (a.shape.reduce((x, y) => x * y, 1) !== a.data.length) {
    throw new Error(`${a.name}: shape ${a.shape.join("×")} does not hold ${a.data.length} values`);
  }
}

/** One `.npy` file, format version 1.0: magic, version, header length, a Python dict literal padded to 64 bytes. */
export function npyBytes(a: NamedArray): Uint8Array {
  checkShape(a);
  const shape = a.shape.length === 1 ? `(${a.shape[0]},)` : `(${a.shape.join(", ")})`;
  let header = `{'descr': '${dtypeOf(a).npy}', 'fortran_order': False, 'shape': ${shape}, }`;
  const unpadded = 10 + header.length + 1;
  header += " ".repeat((64 - (unpadded % 64)) % 64) + "\n";
  const data = bytesOf(a);
  const out = new Uint8Array(10 + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0); // \x93NUMPY 1.0
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(data, 10 + header.length);
  return out;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO 3309, as zip uses it). */
export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A zip archive of `files`, stored (method 0, no compression); refuses anything over the 4 GiB of plain zip. */
export function zipStore(files: { name: string; data: Uint8Array }[]): Uint8Array {
  const enc = new TextEncoder();
  const locals: Uint8Array[] = [], centrals: Uint8Array[] = [];
  let offset = 0;
  for (const f of files) {
    const name = enc.encode(f.name), crc = crc32(f.data), size = f.data.length;
    if (size >= 0xffffffff || offset >= 0xffffffff) throw new Error("the export is over 4 GiB; zip64 is not written");
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true); // version needed
    lv.setUint16(8, 0, true); // method: stored
    lv.setUint16(12, 0x21, true); // DOS date 1980-01-01: reproducible bytes
    lv.setUint32(14, crc, true);
    lv.setUint32(18, size, true);
    lv.setUint32(22, size, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const central = new Uint8Array(46 + name.length);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(14, 0x21, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, size, true);
    cv.setUint32(24, size, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, offset, true);
    central.set(name, 46);
    locals.push(local, f.data);
    centrals.push(central);
    offset += local.length + size;
  }
  const cdSize = centrals.reduce((s, c) => s + c.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, files.length, true);
  ev.setUint16(10, files.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  return concat([...locals, ...centrals, end]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** An `.npz` archive: one `<name>.npy` per array (`numpy.load(path)[name]`). */
export function npzBytes(arrays: NamedArray[]): Uint8Array {
  return zipStore(arrays.map((a) => ({ name: `${a.name}.npy`, data: npyBytes(a) })));
}

/**
 * A safetensors file: `u64` little-endian header length, the JSON header (`{name: {dtype, shape, data_offsets}}`
 * and `__metadata__`, string values only), padded with spaces to a multiple of 8 bytes, then the data.
 */
export function safetensorsBytes(arrays: NamedArray[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const a of arrays) {
    checkShape(a);
    header[a.name] = { dtype: dtypeOf(a).st, shape: a.shape, data_offsets: [offset, offset + a.data.byteLength] };
    offset += a.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (new TextEncoder().encode(json).length % 8)) % 8);
  const h = new TextEncoder().encode(json);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(h.length), true);
  return concat([len, h, ...arrays.map(bytesOf)]);
}
