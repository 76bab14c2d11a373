// binding.d.ts must declare the loaded native module exactly: every export and every
// method of its classes, in both directions.
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';
import { native } from '../lib/native';
import { caught, expectError } from './helpers';

interface Declared {
  functions: Set<string>;
  classes: Map<string, Set<string>>;
}

function readDeclaration(): Declared {
  const file = path.join(__dirname, '..', 'binding.d.ts');
  const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const out: Declared = { functions: new Set(), classes: new Map() };
  const exported = (n: ts.Node) => (ts.getCombinedModifierFlags(n as ts.Declaration) & ts.ModifierFlags.Export) !== 0;
  source.forEachChild((node) => {
    if (ts.isFunctionDeclaration(node) && node.name && exported(node)) out.functions.add(node.name.text);
    if (ts.isClassDeclaration(node) && node.name && exported(node)) {
      const methods = new Set<string>();
      for (const m of node.members) if (ts.isMethodDeclaration(m) && m.name && ts.isIdentifier(m.name)) methods.add(m.name.text);
      out.classes.set(node.name.text, methods);
    }
    if (ts.isVariableStatement(node) && exported(node))
      for (const d of node.declarationList.declarations) if (ts.isIdentifier(d.name)) out.functions.add(d.name.text);
  });
  return out;
}

const declared = readDeclaration();
const loaded = native as unknown as Record<string, unknown>;

test('binding.d.ts declares something', () => {
  expect(declared.functions.size).toBeGreaterThan(5);
  expect(declared.classes.size).toBeGreaterThanOrEqual(2);
});

test('every declared export exists in the module with the declared kind', () => {
  for (const name of declared.functions) {
    expect({ name, type: typeof loaded[name] }).toEqual({ name, type: 'function' });
  }
  for (const name of declared.classes.keys()) {
    expect({ name, type: typeof loaded[name] }).toEqual({ name, type: 'function' });
  }
});

test('every export of the module is declared', () => {
  const all = new Set([...declared.functions, ...declared.classes.keys()]);
  const undeclared = Object.keys(loaded).filter((k) => !all.has(k));
  expect(undeclared).toEqual([]);
});

test('the classes have exactly the declared methods', () => {
  for (const [name, methods] of declared.classes) {
    const proto = (loaded[name] as { prototype: object }).prototype;
    const actual = Object.getOwnPropertyNames(proto).filter((k) => k !== 'constructor');
    expect({ name, methods: [...actual].sort() }).toEqual({ name, methods: [...methods].sort() });
  }
});

test('the native classes cannot be constructed directly', () => {
  expectError(
    caught(() => new (native.Model as unknown as new () => unknown)()),
    'TypeError',
    'TEMPERED_INVALID_TYPE',
  );
  expectError(
    caught(() => new (native.Dataset as unknown as new () => unknown)()),
    'TypeError',
    'TEMPERED_INVALID_TYPE',
  );
});
