// A report as a list of blocks (headings, paragraphs, tables, figures, picture grids),
// written out as Markdown, as one self-contained HTML page, and as CSV per table. Each
// experiment kind builds its own document; this file knows nothing about any of them.
import type { FigureRecord, PictureGrid } from '../results';

export interface Table {
  /** File name of its CSV and the id on the page. */
  id: string;
  columns: string[];
  /** 'r': right-aligned (numbers). */
  align: ('l' | 'r')[];
  /** Cells as text; **bold** and `code` are the only markup. */
  rows: string[][];
}

export type Block =
  | { kind: 'heading'; level: 2 | 3; text: string }
  | { kind: 'paragraph'; text: string }
  | { kind: 'list'; items: string[] }
  | { kind: 'table'; table: Table }
  | { kind: 'figure'; figure: FigureRecord }
  | { kind: 'pictures'; grid: PictureGrid };

export interface ReportDocument {
  title: string;
  blocks: Block[];
}

export const figureFile = (f: FigureRecord) => `figures/${f.id}.svg`;
export const tableFile = (t: Table) => `tables/${t.id}.csv`;

// ---------------------------------------------------------------- Markdown

const mdCell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function toMarkdown(doc: ReportDocument): string {
  const L: string[] = [`# ${doc.title}`, ''];
  for (const b of doc.blocks) {
    switch (b.kind) {
      case 'heading':
        L.push(`${'#'.repeat(b.level)} ${b.text}`, '');
        break;
      case 'paragraph':
        L.push(b.text, '');
        break;
      case 'list':
        L.push(...b.items.map((i) => `- ${i}`), '');
        break;
      case 'table':
        L.push(`| ${b.table.columns.map(mdCell).join(' | ')} |`);
        L.push(`|${b.table.align.map((a) => (a === 'r' ? '---:' : '---')).join('|')}|`);
        for (const row of b.table.rows) L.push(`| ${row.map(mdCell).join(' | ')} |`);
        L.push('');
        break;
      case 'figure':
        L.push(`![${b.figure.alt}](${figureFile(b.figure)})`, '', `*${b.figure.caption}*`, '');
        break;
      case 'pictures':
        L.push(`![${b.grid.caption}](${b.grid.file})`, '', `*${b.grid.caption}*`, '');
        break;
    }
  }
  return L.join('\n');
}

// ---------------------------------------------------------------- CSV

const csvCell = (s: string) => {
  const plain = s.replace(/\*\*/g, '').replace(/`/g, '');
  return /[",\n]/.test(plain) ? `"${plain.replace(/"/g, '""')}"` : plain;
};

export function toCsv(t: Table): string {
  return [t.columns, ...t.rows].map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}

// ---------------------------------------------------------------- HTML

export const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The text with its only markup (**bold**, `code`, *italic*) as HTML. */
export function inline(s: string): string {
  return escapeHtml(s)
    .replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>')
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/(^|[\s(])\*([^*\s][^*]*?)\*(?=[\s).,;:]|$)/g, '$1<em>$2</em>');
}

const CSS = `
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;max-width:1180px;margin:2em auto;padding:0 1.2em}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}h3{margin-top:1.5em}
p{max-width:60em}code{background:#f2f2f2;padding:0 .25em;border-radius:3px}
table.data{border-collapse:collapse;margin:.8em 0;font-size:.9em}
table.data th,table.data td{border:1px solid #d0d0d0;padding:.25em .55em;vertical-align:top}
table.data th{background:#f4f4f6;text-align:left}table.data td.r{text-align:right;font-variant-numeric:tabular-nums}
table.data caption{caption-side:bottom;text-align:left;font-size:.85em;color:#555;padding-top:.3em}
figure{margin:1.2em 0}figure .plot svg{max-width:100%;height:auto}
figcaption{font-size:.9em;color:#333;max-width:60em}details{font-size:.85em;color:#444}
table.pictures{border-collapse:separate;border-spacing:6px;margin:.6em 0}
table.pictures th{font-size:.78em;font-weight:600;text-align:center;max-width:9em;vertical-align:bottom}
table.pictures th.row{text-align:right;vertical-align:middle;max-width:7em}
table.pictures td{text-align:center;vertical-align:top;font-size:.72em;color:#444;max-width:9em}
.tile{position:relative;display:inline-block;line-height:0;border:3px solid transparent}
.tile img{width:84px;height:84px;image-rendering:pixelated}
.tile.success{border-color:#00aa3c}.tile.failure{border-color:#d21e1e}.tile.not-attacked{border-color:#969696}
.tile.masked::after{content:"all zero";position:absolute;left:0;right:0;top:34px;line-height:16px;font-size:11px;font-weight:700;color:#fff;background:rgba(0,0,0,.55)}
.masked-note{color:#8a0000;font-weight:600}
.legend span{display:inline-block;margin-right:1em}.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}
`;

function tableHtml(t: Table): string {
  const head = `<tr>${t.columns.map((c) => `<th scope="col">${inline(c)}</th>`).join('')}</tr>`;
  const body = t.rows
    .map(
      (r) =>
        `<tr>${r.map((c, k) => (k === 0 ? `<th scope="row">${inline(c)}</th>` : `<td class="${t.align[k]}">${inline(c)}</td>`)).join('')}</tr>`,
    )
    .join('\n');
  return `<table class="data" id="table-${t.id}" data-table="${t.id}">\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody>\n<caption>CSV: <code>${tableFile(t)}</code></caption></table>`;
}

function figureHtml(f: FigureRecord, svg: string): string {
  return (
    `<figure class="plot-figure" id="figure-${f.id}">\n<div class="plot" role="img" aria-label="${escapeHtml(f.alt)}">${svg}</div>\n` +
    `<figcaption><strong>${escapeHtml(f.title)}.</strong> ${inline(f.caption)} (<code>${figureFile(f)}</code>)</figcaption>\n` +
    `<details><summary>Text alternative</summary><p>${escapeHtml(f.alt)}</p></details>\n</figure>`
  );
}

function picturesHtml(g: PictureGrid): string {
  const head = `<tr><th></th>${g.columns.map((c) => `<th scope="col">${escapeHtml(c)}</th>`).join('')}</tr>`;
  const rows = g.rows
    .map(
      (row) =>
        `<tr><th scope="row" class="row">${escapeHtml(row.label)}</th>` +
        row.cells
          .map((c) => {
            if (!c) return g.kind === 'saliency' ? '<td>no map: not attacked</td>' : '<td>–</td>';
            const cls = ['tile', c.outcome ?? '', c.allZero ? 'masked' : ''].filter(Boolean).join(' ');
            const note = c.allZero ? `<span class="masked-note">${escapeHtml(c.note)}</span>` : escapeHtml(c.note);
            return `<td><span class="${cls}"><img alt="${escapeHtml(c.note)}" src="data:image/png;base64,${c.png}"></span><br>${note}</td>`;
          })
          .join('') +
        '</tr>',
    )
    .join('\n');
  const legend =
    g.kind === 'adversarial'
      ? '<p class="legend"><span><i style="background:#00aa3c"></i>misclassified within the budget</span><span><i style="background:#d21e1e"></i>the attack failed</span><span><i style="background:#969696"></i>misclassified to begin with (not attacked)</span></p>'
      : '<p class="legend"><span><i style="background:#5a0000"></i>“all zero”: the map is zero everywhere (masked); the attack then follows the tie-break order</span></p>';
  return `<figure class="pictures" id="pictures-${g.id}">\n<table class="pictures">\n<thead>${head}</thead>\n<tbody>\n${rows}\n</tbody></table>\n${legend}\n<figcaption>${escapeHtml(g.caption)}</figcaption>\n</figure>`;
}

/** One page that opens from disk with nothing else: styles inline, figures as inline SVG, pictures as data URIs, no script. */
export function toHtml(doc: ReportDocument, svgs: Map<string, string>): string {
  const body: string[] = [`<h1>${inline(doc.title)}</h1>`];
  for (const b of doc.blocks) {
    switch (b.kind) {
      case 'heading':
        body.push(`<h${b.level}>${inline(b.text)}</h${b.level}>`);
        break;
      case 'paragraph':
        body.push(`<p>${inline(b.text)}</p>`);
        break;
      case 'list':
        body.push(`<ul>${b.items.map((i) => `<li>${inline(i)}</li>`).join('')}</ul>`);
        break;
      case 'table':
        body.push(tableHtml(b.table));
        break;
      case 'figure':
        body.push(figureHtml(b.figure, svgs.get(b.figure.id) ?? ''));
        break;
      case 'pictures':
        body.push(picturesHtml(b.grid));
        break;
    }
  }
  return (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n' +
    // No request may leave the file: forbid everything but inline styles and data: images.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">\n` +
    `<title>${escapeHtml(doc.title)}</title>\n<style>${CSS}</style>\n</head>\n<body>\n${body.join('\n')}\n</body>\n</html>\n`
  );
}
