// Renders a results object (and nothing else) into results.md, report.html, one SVG per
// figure and one CSV per table. Each experiment kind registers the document it builds;
// the writing out is shared.
import * as path from 'path';
import { writeFileAtomic } from '../../fsutil';
import type { AnyResults } from '../results';
import { studyDocument } from '../study/document';
import { figureFile, ReportDocument, Table, tableFile, toCsv, toHtml, toMarkdown } from './document';
import { reproduceDocument } from './reproduce';
import { specToSvg } from './vega';

/** The document builder of each experiment kind (`results.kind`). */
const DOCUMENTS: { [K in AnyResults['kind']]: (r: Extract<AnyResults, { kind: K }>) => ReportDocument } = {
  reproduce: reproduceDocument,
  study: studyDocument,
};

export interface RenderedReport {
  markdown: string;
  html: string;
  /** Relative path -> content: figures/*.svg and tables/*.csv. */
  files: Map<string, string>;
}

export async function renderReport(r: AnyResults): Promise<RenderedReport> {
  const doc = (DOCUMENTS[r.kind] as (r: AnyResults) => ReportDocument)(r);
  const svgs = new Map<string, string>();
  const files = new Map<string, string>();
  for (const b of doc.blocks) {
    if (b.kind === 'figure') {
      const svg = await specToSvg(b.figure.id, b.figure.spec);
      svgs.set(b.figure.id, svg);
      files.set(figureFile(b.figure), svg);
    } else if (b.kind === 'table') {
      files.set(tableFile(b.table as Table), toCsv(b.table));
    }
  }
  return { markdown: toMarkdown(doc), html: toHtml(doc, svgs), files };
}

/** Writes every rendered file atomically into `dir`; the page last, when all it names exists. */
export async function writeRendered(dir: string, rendered: RenderedReport): Promise<void> {
  for (const [file, content] of rendered.files) await writeFileAtomic(path.join(dir, file), content);
  await writeFileAtomic(path.join(dir, 'results.md'), rendered.markdown);
  await writeFileAtomic(path.join(dir, 'report.html'), rendered.html);
}
