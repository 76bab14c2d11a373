// Import of ONNX models: a graph that is a chain of layers tempered runs (Conv 3x3, Relu,
// MaxPool 2x2, Flatten/Reshape, Gemm or MatMul+Add, Dropout, an optional final Softmax with a
// temperature) becomes an architecture spec and its parameters; anything else is refused
// naming the node. The bytes are decoded by protobufjs with the ONNX project's own schema
// (lib/onnx/onnx.proto); the graph is followed by tensor names from the input to the output,
// and every size is checked against what the chain needs before any tensor data is read.
import * as path from 'path';
import * as protobuf from 'protobufjs';
import type { ArchSpec, LayerSpec } from '../arch';
import { checkArch } from '../arch';
import type { BackendChoice } from '../backends';
import { TemperedError } from '../errors';
import { readRegularFile } from '../fsutil';
import { Model, ModelMetadata, parameterLayout, refuseOverflowingWeights } from '../model';
import { packageRoot } from '../native';

/** Largest ONNX file read: far above any network tempered runs (1e8 float parameters is 400 MB). */
export const MAX_ONNX_BYTES = 512 * 1024 * 1024;
/** Most nodes in a graph: a network has at most 64 layers; constants and no-ops add a few per layer. */
const MAX_NODES = 4096;
/** Most elements in one tensor: the engine's limit on a whole network's parameters. */
const MAX_TENSOR_ELEMENTS = 1e8;
/** The ai.onnx opsets understood: from the first with today's Dropout, Gemm and Reshape
 * semantics to the newest of the vendored onnx.proto's release (ONNX 1.23). */
const MIN_OPSET = 7;
const MAX_OPSET = 28;

// TensorProto.DataType and AttributeProto.AttributeType values used here (onnx.proto).
const FLOAT = 1;
const INT64 = 7;
const BOOL = 9;
const DOUBLE = 11;
const ATTR = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;
const EXTERNAL = 1; // TensorProto.DataLocation

// The decoded messages, as far as they are read here (protobufjs fills absent fields with their
// defaults; int64 fields arrive as Long objects).
type Int64 = number | protobuf.Long;
interface TensorProto {
  name: string;
  dims: Int64[];
  dataType: number;
  segment?: unknown;
  floatData: number[];
  int32Data: number[];
  int64Data: Int64[];
  doubleData: number[];
  rawData: Uint8Array;
  externalData: unknown[];
  dataLocation: number;
}
interface AttributeProto {
  name: string;
  type: number;
  f: number;
  i: Int64;
  s: Uint8Array;
  t?: TensorProto | null;
  floats: number[];
  ints: Int64[];
  refAttrName: string;
}
interface NodeProto {
  name: string;
  opType: string;
  domain: string;
  input: string[];
  output: string[];
  attribute: AttributeProto[];
}
interface DimensionProto {
  value?: 'dimValue' | 'dimParam';
  dimValue: Int64;
  dimParam: string;
}
interface ValueInfoProto {
  name: string;
  type?: { value?: string; tensorType?: { elemType: number; shape?: { dim: DimensionProto[] } | null } | null } | null;
}
interface GraphProto {
  name: string;
  node: NodeProto[];
  initializer: TensorProto[];
  sparseInitializer: unknown[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
}
interface ModelProto {
  irVersion: Int64;
  opsetImport: { domain: string; version: Int64 }[];
  producerName: string;
  producerVersion: string;
  graph?: GraphProto | null;
}

/** What an ONNX file maps onto: a spec, its parameters (parameterLayout(arch) order) and the
 * metadata of the model file it becomes. */
export interface ImportedOnnx {
  arch: ArchSpec;
  parameters: Float32Array;
  metadata: Partial<ModelMetadata>;
}

let modelType: protobuf.Type | undefined;
/** The ModelProto decoder, from the vendored schema (shipped beside the compiled code's package root). */
function onnxModelType(): protobuf.Type {
  if (!modelType) {
    const schema = path.join(packageRoot(), 'lib', 'onnx', 'onnx.proto');
    try {
      const root = protobuf.loadSync(schema);
      root.resolveAll();
      modelType = root.lookupType('onnx.ModelProto');
    } catch (err) {
      // The package ships the file (package.json "files"); a copy of dist/ alone lacks it.
      throw new TemperedError('TEMPERED_INTERNAL', `the ONNX schema ${schema} cannot be loaded: ${(err as Error).message}`, { cause: err });
    }
  }
  return modelType;
}

/** Estimated bytes of JavaScript heap the decoded objects may take: far above any network
 * tempered runs (weights arrive as raw_data, views of the file's bytes). */
const MAX_DECODED_BYTES = 1 << 30;
// What protobufjs allocates per item, roughly and generously (V8, 64-bit).
const COST = { message: 512, element: 16, long: 64, bytes: 64, string: 64 } as const;
const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const WIRE_OF_SCALAR: Record<string, number> = {
  ...Object.fromEntries(['int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64', 'bool'].map((t) => [t, 0])),
  ...Object.fromEntries(['fixed64', 'sfixed64', 'double'].map((t) => [t, 1])),
  ...Object.fromEntries(['fixed32', 'sfixed32', 'float'].map((t) => [t, 5])),
};

/**
 * Walks the wire data with protobufjs's Reader and the schema, before decoding, to bound what
 * decoding allocates: a few bytes of file can make a message object or a Long of hundreds of
 * bytes, so a 512 MiB file of empty nodes would exhaust the heap (a crash, not an error). Known
 * fields must carry the wire type of their schema type (the decoder would read them otherwise
 * than this walk does); unknown ones are skipped, as the decoder skips them.
 */
function checkDecodedSize(bytes: Uint8Array, type: protobuf.Type, source: string): void {
  const reader = protobuf.Reader.create(bytes);
  let cost = 0;
  const walk = (message: protobuf.Type, end: number, depth: number): void => {
    if (depth > protobuf.util.recursionLimit) throw new Error('maximum nesting depth exceeded');
    cost += COST.message;
    while (reader.pos < end) {
      const tag = reader.uint32();
      const wire = tag & 7;
      const field = message.fieldsById[tag >>> 3];
      if (!field) {
        reader.skipType(wire);
        continue;
      }
      const nested = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
      const scalarWire = field.resolvedType instanceof protobuf.Enum ? 0 : WIRE_OF_SCALAR[field.type];
      const perElement = LONG_TYPES.has(field.type) ? COST.long : COST.element;
      if (wire === 2) {
        const length = reader.uint32();
        const start = reader.pos;
        if (length > end - start) throw new Error(`field ${field.name} runs past the end of its message`);
        if (nested) walk(nested, start + length, depth + 1);
        else if (field.type === 'string') cost += COST.string + 2 * length;
        else if (field.type === 'bytes') cost += COST.bytes;
        else if (field.repeated && scalarWire !== undefined)
          cost += length * perElement; // packed: at least a byte each
        else throw new Error(`field ${field.name} is length-delimited, but its type is ${field.type}`);
        reader.pos = start + length;
      } else if (!nested && scalarWire === wire) {
        reader.skipType(wire);
        cost += perElement;
      } else {
        throw new Error(`field ${field.name} has wire type ${wire}, which its type ${field.type} never has`);
      }
      if (cost > MAX_DECODED_BYTES)
        throw new TemperedError(
          'TEMPERED_BAD_FILE',
          `${source}: decoding it would take more than ${MAX_DECODED_BYTES >> 20} MiB of memory`,
        );
    }
    if (reader.pos !== end) throw new Error('a field runs past the end of its message');
  };
  try {
    walk(type, bytes.length, 0);
  } catch (err) {
    if (err instanceof TemperedError) throw err;
    throw new TemperedError('TEMPERED_BAD_FILE', `${source}: not a readable ONNX model (${(err as Error).message})`, { cause: err });
  }
}

/** Reads an ONNX file and maps it onto a model (see decodeOnnx for what is accepted). */
export async function importOnnx(file: string, opts: { backend?: BackendChoice } = {}): Promise<Model> {
  const bytes = await readRegularFile(file, { maxBytes: MAX_ONNX_BYTES });
  const { arch, parameters, metadata } = decodeOnnx(bytes, file);
  const model = Model.fromParameters(parameters, { arch, metadata, backend: opts.backend });
  try {
    await refuseOverflowingWeights(file, model); // as Model.load would refuse the file written from it
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

/** Maps the bytes of an ONNX model onto a spec and its parameters. Throws TEMPERED_BAD_FILE for
 * bytes that are not a well-formed ONNX model, TEMPERED_UNSUPPORTED_MODEL (naming the node and
 * its op type) for a graph that is not a network tempered runs. */
export function decodeOnnx(bytes: Uint8Array, source = 'the ONNX model'): ImportedOnnx {
  if (bytes.length > MAX_ONNX_BYTES)
    throw new TemperedError('TEMPERED_BAD_FILE', `${source}: ${bytes.length} bytes, more than the ${MAX_ONNX_BYTES}-byte limit`);
  const type = onnxModelType();
  checkDecodedSize(bytes, type, source);
  let model: ModelProto;
  try {
    model = type.decode(bytes) as unknown as ModelProto;
  } catch (err) {
    // protobufjs throws on truncated or damaged wire data (checkDecodedSize has seen most already).
    throw new TemperedError('TEMPERED_BAD_FILE', `${source}: not a readable ONNX model (${(err as Error).message})`, { cause: err });
  }
  return new OnnxChain(model, source).map();
}

/** The state of the tensor flowing down the chain: an image (NCHW, batch left out) or features. */
type Flow = { kind: 'image'; c: number; h: number; w: number } | { kind: 'features'; n: number };

class OnnxChain {
  private readonly graph: GraphProto;
  private readonly opset: number;
  /** Initializers and the outputs of Constant nodes, by tensor name. */
  private readonly constants = new Map<string, TensorProto>();
  /** The tensors nodes produce. */
  private readonly produced = new Set<string>();
  /** The nodes reading each tensor. */
  private readonly consumers = new Map<string, NodeProto[]>();
  private readonly layers: LayerSpec[] = [];
  private readonly tensors = new Map<string, Float32Array>();
  private convs = 0;
  private denses = 0;
  /** The batch size fixed by the graph input (undefined when it is symbolic). */
  private batch: number | undefined;

  constructor(
    private readonly model: ModelProto,
    private readonly source: string,
  ) {
    if (!model.graph) this.badFile('no graph');
    this.graph = model.graph;
    this.opset = this.defaultOpset();
  }

  map(): ImportedOnnx {
    const g = this.graph;
    if (g.node.length > MAX_NODES) this.unsupported(`${g.node.length} nodes, more than the ${MAX_NODES} a network of tempered can need`);
    if (g.sparseInitializer.length > 0) this.unsupported('sparse initializers are not supported');
    this.collectConstants();
    const input = this.imageInput();
    if (g.output.length !== 1) this.unsupported(`the graph has ${g.output.length} outputs; a network has one (its logits)`);
    const outputName = g.output[0].name;
    for (const node of g.node)
      for (const name of new Set(node.input)) {
        if (name === '') continue;
        const readers = this.consumers.get(name);
        if (readers) readers.push(node);
        else this.consumers.set(name, [node]);
      }

    const onChain = new Set<NodeProto>();
    let current = input.name;
    let flow: Flow = { kind: 'image', c: input.c, h: input.h, w: input.w };
    let softmaxTemperature: number | undefined;
    let pendingTemperature: { node: NodeProto; temperature: number } | undefined;
    let matmulAwaitingBias: { units: number } | undefined;
    while (current !== outputName) {
      const readers = this.consumers.get(current) ?? [];
      if (readers.length === 0)
        this.unsupported(`tensor '${current}' is read by no node and is not the graph output '${outputName}': the chain is broken`);
      if (readers.length > 1)
        this.unsupported(
          `tensor '${current}' is read by ${readers.length} nodes (${readers.map((n) => this.describe(n)).join(', ')}): ` +
            'only a chain of single layers maps onto a tempered network',
        );
      const node = readers[0];
      if (onChain.has(node)) this.unsupported(`${this.describe(node)} is reached twice: the graph has a cycle`);
      onChain.add(node);
      if (pendingTemperature && node.opType !== 'Softmax')
        this.refuse(pendingTemperature.node, 'a division or multiplication by a constant is supported only just before the final Softmax');
      if (matmulAwaitingBias && node.opType !== 'Add') matmulAwaitingBias = undefined;
      this.checkNode(node, current);

      switch (node.opType) {
        case 'Conv':
          flow = this.conv(node, flow);
          break;
        case 'Relu':
          this.attributes(node, []);
          this.onlyInputs(node, 1);
          this.layers.push({ type: 'relu' });
          break;
        case 'MaxPool':
          flow = this.maxPool(node, flow);
          break;
        case 'Flatten':
        case 'Reshape':
          flow = this.flatten(node, flow);
          break;
        case 'Gemm':
          flow = this.gemm(node, flow);
          break;
        case 'MatMul':
          flow = this.matMul(node, flow);
          matmulAwaitingBias = { units: flow.kind === 'features' ? flow.n : 0 };
          break;
        case 'Add':
          if (!matmulAwaitingBias) this.refuse(node, 'Add is supported only as the bias just after a MatMul');
          this.addBias(node, current, matmulAwaitingBias.units);
          matmulAwaitingBias = undefined;
          break;
        case 'Dropout':
          this.dropout(node);
          break;
        case 'Identity':
          this.attributes(node, []);
          this.onlyInputs(node, 1);
          break;
        case 'Div':
        case 'Mul':
          pendingTemperature = { node, temperature: this.temperature(node, current, flow) };
          break;
        case 'Softmax':
          this.softmax(node, flow, outputName);
          softmaxTemperature = pendingTemperature?.temperature ?? 1;
          pendingTemperature = undefined;
          break;
        default:
          this.refuse(node, `op type ${node.opType} is not supported (supported: ${SUPPORTED_OPS.join(', ')})`);
      }
      current = node.output[0];
    }
    if (pendingTemperature)
      this.refuse(pendingTemperature.node, 'a division or multiplication by a constant is supported only just before the final Softmax');
    const stray = g.node.find((n) => !onChain.has(n) && !isConstantNode(n));
    if (stray) this.refuse(stray, 'the node is not on the chain from the graph input to its output');
    if (this.layers.length === 0) this.unsupported('the graph has no layers');
    if (flow.kind !== 'features')
      this.unsupported('the graph output is not a vector of class scores (no Flatten and dense layer at the end)');
    this.checkOutputShape(g.output[0], flow.n);

    const arch = this.checkedArch({ channels: input.c, height: input.h, width: input.w }, flow.n);
    const layout = parameterLayout(arch);
    const parameters = new Float32Array(layout.reduce((s, p) => s + p.size, 0));
    for (const p of layout) {
      const t = this.tensors.get(p.name);
      // The chain's own bookkeeping names each tensor as the engine does; a gap is a bug here.
      if (!t || t.length !== p.size) throw new TemperedError('TEMPERED_INTERNAL', `${this.source}: no ${p.size} values for '${p.name}'`);
      parameters.set(t, p.offset);
    }
    const metadata: Partial<ModelMetadata> = {
      imported: {
        format: 'onnx',
        file: path.basename(this.source),
        producer: [this.model.producerName, this.model.producerVersion].filter((s) => s !== '').join(' ') || undefined,
        irVersion: int64(this.model.irVersion),
        opset: this.opset,
        graph: g.name || undefined,
        softmax: softmaxTemperature !== undefined,
      },
    };
    if (softmaxTemperature !== undefined) metadata.importedSoftmaxTemperature = softmaxTemperature;
    return { arch, parameters, metadata };
  }

  // ---- the graph's frame: opset, constants, input, output ----------------------------------

  private defaultOpset(): number {
    const entry = this.model.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx');
    if (!entry) this.unsupported('the model imports no ai.onnx opset');
    const version = int64(entry.version);
    if (!(version >= MIN_OPSET && version <= MAX_OPSET))
      this.unsupported(`ai.onnx opset ${version} is not supported (${MIN_OPSET} to ${MAX_OPSET})`);
    return version;
  }

  private collectConstants(): void {
    for (const t of this.graph.initializer) {
      if (this.constants.has(t.name)) this.badFile(`initializer '${t.name}' is defined twice`);
      this.constants.set(t.name, t);
    }
    for (const node of this.graph.node) {
      for (const name of node.output) {
        if (name === '') continue;
        if (this.produced.has(name) || this.constants.has(name))
          this.refuse(node, `tensor '${name}' is produced twice: an ONNX graph assigns each tensor once`);
        this.produced.add(name);
      }
      if (isConstantNode(node)) this.constants.set(node.output[0] ?? '', this.constantValue(node));
    }
  }

  /** The value of a Constant node as a tensor (its `value` attribute or a value_float(s)/value_int(s)). */
  private constantValue(node: NodeProto): TensorProto {
    if (node.output.length !== 1 || node.input.length !== 0) this.refuse(node, 'a Constant has no inputs and one output');
    if (node.attribute.length !== 1) this.refuse(node, 'a Constant has exactly one value attribute');
    const a = node.attribute[0];
    const tensor = (dataType: number, dims: number[], values: Partial<TensorProto>): TensorProto =>
      ({
        name: node.output[0],
        dims,
        dataType,
        floatData: [],
        int32Data: [],
        int64Data: [],
        doubleData: [],
        rawData: new Uint8Array(),
        externalData: [],
        dataLocation: 0,
        ...values,
      }) as TensorProto;
    if (a.name === 'value' && a.type === ATTR.TENSOR && a.t) return a.t;
    if (a.name === 'value_float' && a.type === ATTR.FLOAT) return tensor(FLOAT, [], { floatData: [a.f] });
    if (a.name === 'value_floats' && a.type === ATTR.FLOATS) return tensor(FLOAT, [a.floats.length], { floatData: a.floats });
    if (a.name === 'value_int' && a.type === ATTR.INT) return tensor(INT64, [], { int64Data: [a.i] });
    if (a.name === 'value_ints' && a.type === ATTR.INTS) return tensor(INT64, [a.ints.length], { int64Data: a.ints });
    return this.refuse(node, `Constant attribute '${a.name}' is not supported (value, value_float(s), value_int(s))`);
  }

  /** The one graph input that is not an initializer: float images [N, C, H, W] of a static C, H, W. */
  private imageInput(): { name: string; c: number; h: number; w: number } {
    const inputs = this.graph.input.filter((i) => !this.constants.has(i.name));
    if (inputs.length !== 1)
      this.unsupported(
        `the graph has ${inputs.length} inputs besides its initializers (${inputs.map((i) => `'${i.name}'`).join(', ')}); a network has one`,
      );
    const input = inputs[0];
    const where = `graph input '${input.name}'`;
    const tensorType = input.type?.tensorType;
    if (!tensorType) this.unsupported(`${where} is not a tensor`);
    if (tensorType.elemType !== FLOAT) this.unsupported(`${where} has element type ${tensorType.elemType}, not float (1)`);
    const dims = tensorType.shape?.dim ?? [];
    if (dims.length !== 4) this.unsupported(`${where} has ${dims.length} dimensions; images are [N, C, H, W]`);
    const sizes = dims.map((d) => (d.value === 'dimValue' ? int64(d.dimValue) : undefined));
    const [n, c, h, w] = sizes;
    if (c === undefined || h === undefined || w === undefined)
      this.unsupported(
        `${where} has no fixed channels, height and width (shape [${dims.map((d) => d.dimParam || int64(d.dimValue)).join(', ')}])`,
      );
    if (![c, h, w].every((d) => d >= 1 && d <= MAX_TENSOR_ELEMENTS)) this.unsupported(`${where} has the shape [N, ${c}, ${h}, ${w}]`);
    this.batch = n !== undefined && n > 0 ? n : undefined;
    if (this.produced.has(input.name)) this.unsupported(`${where} is also produced by a node`);
    return { name: input.name, c, h, w };
  }

  private checkOutputShape(output: ValueInfoProto, classes: number): void {
    const dims = output.type?.tensorType?.shape?.dim;
    if (!dims || dims.length === 0) return; // the shape is optional in ONNX
    const last = dims[dims.length - 1];
    if (dims.length !== 2 || (last.value === 'dimValue' && int64(last.dimValue) !== classes))
      this.unsupported(
        `graph output '${output.name}' has shape [${dims.map((d) => d.dimParam || int64(d.dimValue)).join(', ')}], but the chain gives [N, ${classes}]`,
      );
  }

  private checkedArch(input: ArchSpec['input'], classes: number): ArchSpec {
    const spec: ArchSpec = { input, layers: this.layers };
    try {
      return checkArch(spec, 'the network of this graph');
    } catch (err) {
      if ((err as TemperedError).code !== 'TEMPERED_BAD_ARCH') throw err;
      throw new TemperedError(
        'TEMPERED_UNSUPPORTED_MODEL',
        `${this.source}: the graph maps onto a network tempered cannot run (${classes} classes): ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  // ---- one node ------------------------------------------------------------------------------

  /** Checks what every node on the chain must satisfy: the default domain, the chain's tensor
   * as its first input (the second for a commutative Add or Mul) and nowhere else, every other
   * input a constant, and one used output. */
  private checkNode(node: NodeProto, current: string): void {
    if (node.domain !== '' && node.domain !== 'ai.onnx') this.refuse(node, `domain '${node.domain}' is not supported (only ai.onnx)`);
    const positions = node.input.flatMap((name, i) => (name === current ? [i] : []));
    const commutative = node.opType === 'Add' || node.opType === 'Mul';
    if (positions.length !== 1 || (positions[0] !== 0 && !(commutative && positions[0] === 1)))
      this.refuse(node, `it must read the chain's tensor '${current}' once, as its first input`);
    node.input.forEach((name, i) => {
      if (i !== positions[0] && name !== '' && !this.constants.has(name))
        this.refuse(node, `input '${name}' is neither the chain's tensor nor an initializer or Constant`);
    });
    if (node.output.length === 0 || node.output[0] === '') this.refuse(node, 'it has no output');
    for (const extra of node.output.slice(1))
      if (extra !== '' && (this.consumers.has(extra) || this.graph.output.some((o) => o.name === extra)))
        this.refuse(node, `its second output '${extra}' is used; only the first output of a node maps onto a layer`);
  }

  private conv(node: NodeProto, flow: Flow): Flow {
    const at = this.attributes(node, ['kernel_shape', 'strides', 'dilations', 'group', 'pads', 'auto_pad']);
    if (flow.kind !== 'image') this.refuse(node, 'a convolution needs an image, not features');
    this.onlyInputs(node, 3);
    const [filters, channels, kh, kw] = this.constantDims(node, 1, 'weight', 4);
    if (channels !== flow.c) this.refuse(node, `the weight has ${channels} input channels, the chain gives ${flow.c}`);
    if (kh !== 3 || kw !== 3) this.refuse(node, `a ${kh}x${kw} kernel; only 3x3 convolutions are supported`);
    this.expectInts(node, at, 'kernel_shape', [3, 3]);
    this.expectInts(node, at, 'strides', [1, 1], 'stride 1');
    this.expectInts(node, at, 'dilations', [1, 1], 'no dilation');
    if (at.group && this.int(node, at.group) !== 1) this.refuse(node, 'grouped convolutions are not supported');
    const autoPad = at.auto_pad ? this.string(node, at.auto_pad) : 'NOTSET';
    let same: boolean;
    if (autoPad === 'NOTSET') {
      const pads = at.pads ? this.ints(node, at.pads) : [0, 0, 0, 0];
      same = sameInts(pads, [1, 1, 1, 1]);
      if (!same && !sameInts(pads, [0, 0, 0, 0])) this.refuse(node, `pads [${pads.join(', ')}]; only 0 or 1 on every side are supported`);
    } else if (autoPad === 'VALID' || autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
      if (at.pads) this.refuse(node, 'pads together with auto_pad');
      same = autoPad !== 'VALID'; // a 3x3 kernel at stride 1 pads 1 on each side either way
    } else {
      return this.refuse(node, `auto_pad '${autoPad}' is not supported`);
    }
    this.convs += 1;
    const name = `conv${this.convs}`;
    this.tensors.set(`${name}.weight`, this.floats(node, 1, 'weight', [filters, channels, 3, 3]));
    this.tensors.set(`${name}.bias`, node.input[2] ? this.floats(node, 2, 'bias', [filters]) : new Float32Array(filters));
    this.layers.push(same ? { type: 'conv', filters, kernel: 3, padding: 'same' } : { type: 'conv', filters, kernel: 3 });
    return same ? { ...flow, c: filters } : { kind: 'image', c: filters, h: flow.h - 2, w: flow.w - 2 };
  }

  private maxPool(node: NodeProto, flow: Flow): Flow {
    const at = this.attributes(node, ['kernel_shape', 'strides', 'pads', 'dilations', 'ceil_mode', 'storage_order', 'auto_pad']);
    if (flow.kind !== 'image') this.refuse(node, 'max pooling needs an image, not features');
    this.onlyInputs(node, 1);
    if (!at.kernel_shape || !sameInts(this.ints(node, at.kernel_shape), [2, 2])) this.refuse(node, 'only 2x2 max pooling is supported');
    if (!at.strides || !sameInts(this.ints(node, at.strides), [2, 2])) this.refuse(node, 'only stride 2 max pooling is supported');
    if (at.pads && !sameInts(this.ints(node, at.pads), [0, 0, 0, 0])) this.refuse(node, 'padded max pooling is not supported');
    this.expectInts(node, at, 'dilations', [1, 1], 'no dilation');
    const autoPad = at.auto_pad ? this.string(node, at.auto_pad) : 'NOTSET';
    if (autoPad !== 'NOTSET' && autoPad !== 'VALID') this.refuse(node, `auto_pad '${autoPad}' is not supported`);
    // ceil_mode changes nothing on even sides, the only ones the engine pools.
    if (at.ceil_mode && this.int(node, at.ceil_mode) !== 0 && (flow.h % 2 !== 0 || flow.w % 2 !== 0))
      this.refuse(node, 'ceil_mode on an odd side is not supported');
    this.layers.push({ type: 'maxpool' });
    return { kind: 'image', c: flow.c, h: Math.floor(flow.h / 2), w: Math.floor(flow.w / 2) };
  }

  /** Flatten (axis 1) or Reshape to [N, -1]: PyTorch's flatten in (C, H, W) order. */
  private flatten(node: NodeProto, flow: Flow): Flow {
    const features = flow.kind === 'image' ? flow.c * flow.h * flow.w : flow.n;
    if (node.opType === 'Flatten') {
      const at = this.attributes(node, ['axis']);
      this.onlyInputs(node, 1);
      if (at.axis && this.int(node, at.axis) !== 1) this.refuse(node, 'only axis 1 (keep the batch, flatten the rest) is supported');
    } else {
      const at = this.attributes(node, ['allowzero']);
      this.onlyInputs(node, 2);
      if (at.allowzero && this.int(node, at.allowzero) !== 0) this.refuse(node, 'allowzero is not supported');
      const [count] = this.constantDims(node, 1, 'shape', 1);
      if (count !== 2) this.refuse(node, `a reshape to ${count} dimensions; only [N, -1] (a flatten) is supported`);
      const [n, rest] = this.int64s(node, 1, 'shape', 2);
      const keepsBatch = n === 0 || (n === -1 && rest === features) || (this.batch !== undefined && n === this.batch);
      if (!keepsBatch || !(rest === -1 || rest === features))
        this.refuse(node, `a reshape to [${n}, ${rest}]; only [N, -1] or [N, ${features}] (a flatten) is supported`);
    }
    if (flow.kind === 'image') this.layers.push({ type: 'flatten' });
    return { kind: 'features', n: features };
  }

  private gemm(node: NodeProto, flow: Flow): Flow {
    const at = this.attributes(node, ['alpha', 'beta', 'transA', 'transB']);
    const inputs = this.features(node, flow);
    this.onlyInputs(node, 3);
    if (at.transA && this.int(node, at.transA) !== 0) this.refuse(node, 'transA is not supported');
    const transB = at.transB ? this.int(node, at.transB) !== 0 : false;
    const alpha = at.alpha ? this.float(node, at.alpha) : 1;
    const beta = at.beta ? this.float(node, at.beta) : 1;
    const dims = this.constantDims(node, 1, 'weight', 2);
    const [units, fanIn] = transB ? dims : [dims[1], dims[0]];
    if (fanIn !== inputs) this.refuse(node, `the weight [${dims.join(', ')}] takes ${fanIn} inputs, the chain gives ${inputs}`);
    const raw = this.floats(node, 1, 'weight', dims);
    // The engine holds dense weights as PyTorch does, [out][in]; alpha and beta are folded in.
    const weight = transB ? raw : transpose(raw, inputs, units);
    const bias = node.input[2] ? this.bias(node, 2, units) : new Float32Array(units);
    if (alpha !== 1) weight.forEach((v, i) => (weight[i] = v * alpha));
    if (beta !== 1) bias.forEach((v, i) => (bias[i] = v * beta));
    if (!weight.every(Number.isFinite) || !bias.every(Number.isFinite))
      this.refuse(node, `alpha ${alpha} or beta ${beta} scales a weight or bias beyond float32`);
    this.addDense(weight, bias, units);
    return { kind: 'features', n: units };
  }

  private matMul(node: NodeProto, flow: Flow): Flow {
    this.attributes(node, []);
    const inputs = this.features(node, flow);
    this.onlyInputs(node, 2);
    const [fanIn, units] = this.constantDims(node, 1, 'weight', 2);
    if (fanIn !== inputs) this.refuse(node, `the weight [${fanIn}, ${units}] takes ${fanIn} inputs, the chain gives ${inputs}`);
    this.addDense(transpose(this.floats(node, 1, 'weight', [fanIn, units]), fanIn, units), new Float32Array(units), units);
    return { kind: 'features', n: units };
  }

  /** The bias of the dense layer a MatMul just added. */
  private addBias(node: NodeProto, current: string, units: number): void {
    this.attributes(node, []);
    this.onlyInputs(node, 2);
    const index = node.input[0] === current ? 1 : 0;
    this.tensors.set(`fc${this.denses}.bias`, this.bias(node, index, units));
  }

  private addDense(weight: Float32Array, bias: Float32Array, units: number): void {
    this.denses += 1;
    this.tensors.set(`fc${this.denses}.weight`, weight);
    this.tensors.set(`fc${this.denses}.bias`, bias);
    this.layers.push({ type: 'dense', units });
  }

  /** Dropout, the identity at inference: its rate (an attribute before opset 12, an input from
   * it) is kept in the spec for training. */
  private dropout(node: NodeProto): void {
    let rate = 0.5;
    if (this.opset < 12) {
      const at = this.attributes(node, ['ratio', 'is_test']);
      this.onlyInputs(node, 1);
      if (at.ratio) rate = this.float(node, at.ratio);
    } else {
      this.attributes(node, ['seed']);
      this.onlyInputs(node, 3);
      if (node.input[1]) rate = this.scalar(node, 1, 'ratio');
      if (node.input[2] && this.scalar(node, 2, 'training_mode') !== 0) this.refuse(node, 'training_mode is set: not an inference graph');
    }
    if (!(rate >= 0 && rate < 1)) this.refuse(node, `dropout ratio ${rate} is not in [0, 1)`);
    this.layers.push({ type: 'dropout', rate });
  }

  /** A division (or multiplication) of the logits by a positive constant: the temperature of
   * the Softmax that must follow. */
  private temperature(node: NodeProto, current: string, flow: Flow): number {
    this.attributes(node, []);
    this.onlyInputs(node, 2);
    if (flow.kind !== 'features')
      this.refuse(node, 'a division or multiplication is supported only on the logits, before the final Softmax');
    const constIndex = node.input[0] === current ? 1 : 0;
    if (node.opType === 'Div' && constIndex !== 1) this.refuse(node, 'only the logits divided by a constant are supported');
    const value = this.scalar(node, constIndex, node.opType === 'Div' ? 'divisor' : 'factor');
    const temperature = node.opType === 'Div' ? value : 1 / value;
    if (!(temperature > 0 && Number.isFinite(temperature))) this.refuse(node, `the constant ${value} is not a positive finite temperature`);
    return temperature;
  }

  private softmax(node: NodeProto, flow: Flow, outputName: string): void {
    const at = this.attributes(node, ['axis']);
    this.onlyInputs(node, 1);
    if (flow.kind !== 'features') this.refuse(node, 'a softmax is supported only on the logits');
    const axis = at.axis ? this.int(node, at.axis) : this.opset < 13 ? 1 : -1;
    if (axis !== 1 && axis !== -1) this.refuse(node, `softmax over axis ${axis}; only over the classes (axis 1 or -1) is supported`);
    if (node.output[0] !== outputName) this.refuse(node, 'a Softmax is supported only as the last node, giving the graph output');
  }

  // ---- helpers: attributes, inputs, tensors --------------------------------------------------

  /** The node's attributes by name; an attribute outside `allowed` is refused (its meaning would be ignored). */
  private attributes(node: NodeProto, allowed: string[]): Record<string, AttributeProto | undefined> {
    const out: Record<string, AttributeProto | undefined> = {};
    for (const a of node.attribute) {
      if (!allowed.includes(a.name)) this.refuse(node, `attribute '${a.name}' is not supported`);
      if (a.refAttrName !== '') this.refuse(node, `attribute '${a.name}' refers to a function's attribute`);
      if (out[a.name]) this.refuse(node, `attribute '${a.name}' is given twice`);
      out[a.name] = a;
    }
    return out;
  }

  private onlyInputs(node: NodeProto, most: number): void {
    if (node.input.length > most) this.refuse(node, `${node.input.length} inputs; ${node.opType} takes at most ${most} here`);
  }

  private features(node: NodeProto, flow: Flow): number {
    if (flow.kind !== 'features') this.refuse(node, 'a dense layer needs features: add a Flatten before it');
    return flow.n;
  }

  private int(node: NodeProto, a: AttributeProto): number {
    if (a.type !== ATTR.INT) this.refuse(node, `attribute '${a.name}' is not an integer`);
    return this.safe(node, int64(a.i), a.name);
  }

  private ints(node: NodeProto, a: AttributeProto): number[] {
    if (a.type !== ATTR.INTS) this.refuse(node, `attribute '${a.name}' is not a list of integers`);
    return a.ints.map((v) => this.safe(node, int64(v), a.name));
  }

  private float(node: NodeProto, a: AttributeProto): number {
    if (a.type !== ATTR.FLOAT) this.refuse(node, `attribute '${a.name}' is not a float`);
    if (!Number.isFinite(a.f)) this.refuse(node, `attribute '${a.name}' is not finite`);
    return a.f;
  }

  private string(node: NodeProto, a: AttributeProto): string {
    if (a.type !== ATTR.STRING) this.refuse(node, `attribute '${a.name}' is not a string`);
    return Buffer.from(a.s).toString('latin1');
  }

  private expectInts(node: NodeProto, at: Record<string, AttributeProto | undefined>, name: string, want: number[], what?: string): void {
    const a = at[name];
    if (a && !sameInts(this.ints(node, a), want))
      this.refuse(node, `${name} [${this.ints(node, a).join(', ')}]; only ${what ?? `[${want.join(', ')}]`} is supported`);
  }

  private safe(node: NodeProto, v: number, what: string): number {
    if (!Number.isSafeInteger(v)) this.refuse(node, `${what} holds the integer ${v}, out of range`);
    return v;
  }

  /** The constant feeding input `index`, with its dimensions checked to be `rank` non-negative sizes. */
  private constantDims(node: NodeProto, index: number, what: string, rank: number): number[] {
    const t = this.constant(node, index, what);
    const dims = t.dims.map(int64);
    if (dims.length !== rank) this.refuse(node, `the ${what} '${node.input[index]}' has ${dims.length} dimensions, not ${rank}`);
    if (dims.some((d) => !Number.isSafeInteger(d) || d < 1 || d > MAX_TENSOR_ELEMENTS))
      this.refuse(node, `the ${what} '${node.input[index]}' has dimensions [${dims.join(', ')}]`);
    if (dims.reduce((a, b) => a * b, 1) > MAX_TENSOR_ELEMENTS)
      this.refuse(node, `the ${what} '${node.input[index]}' [${dims.join(', ')}] has more than ${MAX_TENSOR_ELEMENTS} elements`);
    return dims;
  }

  private constant(node: NodeProto, index: number, what: string): TensorProto {
    const name = node.input[index];
    const t = name ? this.constants.get(name) : undefined;
    if (!t) this.refuse(node, `its ${what} (input ${index}) must be an initializer or a Constant`);
    if (t.dataLocation === EXTERNAL || t.externalData.length > 0)
      this.refuse(node, `the ${what} '${name}' is stored in an external file, which is not read`);
    if (t.segment) this.refuse(node, `the ${what} '${name}' is a segment of a tensor`);
    return t;
  }

  /** A float constant of exactly `dims`, as float32 values, all finite. */
  private floats(node: NodeProto, index: number, what: string, dims: number[]): Float32Array {
    const t = this.constant(node, index, what);
    const have = t.dims.map(int64);
    if (!sameInts(have, dims))
      this.refuse(node, `the ${what} '${node.input[index]}' has shape [${have.join(', ')}], the chain needs [${dims.join(', ')}]`);
    const count = dims.reduce((a, b) => a * b, 1);
    if (count > MAX_TENSOR_ELEMENTS) this.refuse(node, `the ${what} '${node.input[index]}' has more than ${MAX_TENSOR_ELEMENTS} elements`);
    const values = this.values(node, index, what, count, FLOAT);
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) this.refuse(node, `the ${what} '${node.input[index]}' holds a non-finite value at element ${bad}`);
    return values;
  }

  /** A bias of `units` values: dims [units] or [1, units], or one value broadcast. */
  private bias(node: NodeProto, index: number, units: number): Float32Array {
    const dims = this.constant(node, index, 'bias').dims.map(int64);
    const count = dims.reduce((a, b) => a * b, 1);
    if (count === 1 && dims.every((d) => d === 1)) return new Float32Array(units).fill(this.floats(node, index, 'bias', dims)[0]);
    if (!sameInts(dims, [units]) && !sameInts(dims, [1, units]))
      this.refuse(node, `the bias has shape [${dims.join(', ')}], the chain needs [${units}]`);
    return this.floats(node, index, 'bias', dims);
  }

  /** A one-element float or bool constant (a ratio, a temperature, training_mode). */
  private scalar(node: NodeProto, index: number, what: string): number {
    const t = this.constant(node, index, what);
    const dims = t.dims.map(int64);
    if (!dims.every((d) => d === 1))
      this.refuse(node, `the ${what} '${node.input[index]}' has shape [${dims.join(', ')}], not a single value`);
    if (t.dataType !== FLOAT && t.dataType !== DOUBLE && t.dataType !== BOOL)
      this.refuse(node, `the ${what} '${node.input[index]}' has element type ${t.dataType}, not float or bool`);
    const [v] = this.values(node, index, what, 1, t.dataType);
    if (!Number.isFinite(v)) this.refuse(node, `the ${what} '${node.input[index]}' is not finite`);
    return v;
  }

  /** An int64 constant of `count` values. */
  private int64s(node: NodeProto, index: number, what: string, count: number): number[] {
    const t = this.constant(node, index, what);
    if (t.dataType !== INT64) this.refuse(node, `the ${what} '${node.input[index]}' has element type ${t.dataType}, not int64`);
    let values: number[];
    if (t.rawData.length > 0) {
      if (t.rawData.length !== 8 * count)
        this.refuse(node, `the ${what} '${node.input[index]}' holds ${t.rawData.length} bytes, not ${8 * count}`);
      const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
      values = Array.from({ length: count }, (_, i) => Number(view.getBigInt64(8 * i, true)));
    } else {
      if (t.int64Data.length !== count)
        this.refuse(node, `the ${what} '${node.input[index]}' holds ${t.int64Data.length} values, not ${count}`);
      values = t.int64Data.map(int64);
    }
    return values.map((v) => this.safe(node, v, `the ${what} '${node.input[index]}'`));
  }

  /** `count` values of a float, double or bool tensor, from raw_data or the typed field. */
  private values(node: NodeProto, index: number, what: string, count: number, dataType: number): Float32Array {
    const t = this.constant(node, index, what);
    if (t.dataType !== dataType)
      this.refuse(
        node,
        `the ${what} '${node.input[index]}' has element type ${t.dataType}, not ${dataType === FLOAT ? 'float (1)' : dataType}`,
      );
    const width = dataType === DOUBLE ? 8 : dataType === BOOL ? 1 : 4;
    const out = new Float32Array(count);
    if (t.rawData.length > 0) {
      if (t.rawData.length !== width * count)
        this.refuse(
          node,
          `the ${what} '${node.input[index]}' holds ${t.rawData.length} bytes of data, not the ${width * count} of ${count} values`,
        );
      const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
      for (let i = 0; i < count; i++)
        out[i] = width === 4 ? view.getFloat32(4 * i, true) : width === 8 ? view.getFloat64(8 * i, true) : view.getUint8(i);
      return out;
    }
    const typed = dataType === DOUBLE ? t.doubleData : dataType === BOOL ? t.int32Data : t.floatData;
    if (typed.length !== count) this.refuse(node, `the ${what} '${node.input[index]}' holds ${typed.length} values, not ${count}`);
    out.set(typed);
    return out;
  }

  private describe(node: NodeProto): string {
    const index = this.graph.node.indexOf(node);
    return `node ${node.name ? `'${node.name}'` : `#${index}`} (${node.opType || 'no op type'})`;
  }

  private refuse(node: NodeProto, why: string): never {
    throw new TemperedError('TEMPERED_UNSUPPORTED_MODEL', `${this.source}: ${this.describe(node)}: ${why}`);
  }

  private unsupported(why: string): never {
    throw new TemperedError('TEMPERED_UNSUPPORTED_MODEL', `${this.source}: ${why}`);
  }

  private badFile(why: string): never {
    throw new TemperedError('TEMPERED_BAD_FILE', `${this.source}: ${why}`);
  }
}

/** The op types mapped onto layers (Constant nodes give values; Identity, Div/Mul before Softmax and Softmax map onto none). */
export const SUPPORTED_OPS = [
  'Conv',
  'Relu',
  'MaxPool',
  'Flatten',
  'Reshape',
  'Gemm',
  'MatMul',
  'Add',
  'Dropout',
  'Identity',
  'Div',
  'Mul',
  'Softmax',
  'Constant',
];

function isConstantNode(node: NodeProto): boolean {
  return node.opType === 'Constant' && (node.domain === '' || node.domain === 'ai.onnx');
}

/** An int64 field's value (protobufjs gives a Long when the value needs more than 32 bits);
 * beyond 2^53 it is inexact, which the callers' range checks refuse. */
function int64(v: Int64): number {
  if (typeof v === 'number') return v;
  return (v.unsigned ? v.high >>> 0 : v.high) * 2 ** 32 + (v.low >>> 0);
}

function sameInts(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** [rows][cols] -> [cols][rows]. */
function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}
