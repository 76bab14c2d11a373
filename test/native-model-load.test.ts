// Model.load refuses what would otherwise load without a word: __metadata__.tempered that is
// not an object or whose known fields have the wrong type, and weights that are finite but
// overflow float32 arithmetic (the logits would be Inf/NaN).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Model, parameterLayout } from '../lib/model';
import { writeSafetensors } from '../lib/safetensors';
import { caughtAsync, expectError } from './helpers';

let dir: string;
let params: Float32Array;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-load-'));
  const m = Model.create({ seed: 3, backend: 'cpu' });
  params = m.getParameters();
  m.dispose();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function fileWith(name: string, flat: Float32Array, tempered?: string): Promise<string> {
  const file = path.join(dir, name);
  const tensors = parameterLayout().map((p) => ({ name: p.name, shape: p.shape, data: flat.slice(p.offset, p.offset + p.size) }));
  await writeSafetensors(file, tensors, tempered === undefined ? { format: 'tempered-model' } : { tempered });
  return file;
}

test.each([
  ['null', 'must be a JSON object (got null)'],
  ['5', 'must be a JSON object (got number)'],
  ['"text"', 'must be a JSON object (got string)'],
  ['[1,2]', 'must be a JSON object (got an array)'],
  ['{"seed":"abc"}', '.seed must be an integer'],
  ['{"seed":-1}', '.seed must be an integer'],
  ['{"seed":1.5}', '.seed must be an integer'],
  ['{"trainingTemperature":"20"}', '.trainingTemperature must be a number'],
  ['{"trainingTemperature":2000000}', '.trainingTemperature must be in (0, 1000000] (got 2000000)'],
  ['{"kind":"other"}', ".kind must be 'standard' or 'distilled'"],
  ['{"format":"onnx"}', ".format must be 'tempered-model'"],
  ['{"formatVersion":"1"}', '.formatVersion must be a positive integer'],
  ['{"training":[1]}', '.training must be an object'],
  ['{"createdAt":5}', '.createdAt must be a string'],
])('__metadata__.tempered = %s is refused with TEMPERED_BAD_FILE', async (json, message) => {
  const file = await fileWith('meta.safetensors', params, json);
  const e = await caughtAsync(() => Model.load(file, { backend: 'cpu' }));
  expectError(e, 'TemperedError', 'TEMPERED_BAD_FILE');
  expect(e.message).toContain(message);
});

test('a newer format version is TEMPERED_INCOMPATIBLE; valid metadata loads with its fields', async () => {
  const newer = await fileWith('newer.safetensors', params, '{"formatVersion":99}');
  expectError(await caughtAsync(() => Model.load(newer, { backend: 'cpu' })), 'TemperedError', 'TEMPERED_INCOMPATIBLE');
  const good = await fileWith('good.safetensors', params, '{"seed":7,"trainingTemperature":20,"kind":"distilled","training":{}}');
  const m = await Model.load(good, { backend: 'cpu' });
  expect([m.metadata.seed, m.metadata.trainingTemperature, m.metadata.kind]).toEqual([7, 20, 'distilled']);
  expect(m.getParameters()).toEqual(params);
  m.dispose();
});

test.each([
  ['+FLT_MAX everywhere', 3.4028234663852886e38],
  ['±FLT_MAX alternating', -3.4028234663852886e38],
  ['1e30 everywhere', 1e30],
])('weights at %s are refused with TEMPERED_BAD_FILE (they give non-finite logits)', async (_label, value) => {
  const flat = new Float32Array(params.length).map((_, i) => (value < 0 && i % 2 ? -value : value));
  const file = await fileWith('huge.safetensors', flat);
  const e = await caughtAsync(() => Model.load(file, { backend: 'cpu' }));
  expectError(e, 'TemperedError', 'TEMPERED_BAD_FILE');
  expect(e.message).toContain('non-finite logits');
});
