// Vega-Lite spec -> SVG in Node: compiled to Vega and rendered headless (no canvas, no
// browser), so the page needs no script to show the plots.
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { TemperedError } from '../../errors';

export async function specToSvg(id: string, spec: Record<string, unknown>): Promise<string> {
  try {
    const compiled = vl.compile(spec as unknown as vl.TopLevelSpec).spec;
    const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
    const svg = await view.toSVG();
    view.finalize();
    return svg;
  } catch (e) {
    throw new TemperedError('TEMPERED_BAD_DATA', `figure ${id} cannot be drawn: ${(e as Error).message}`, { cause: e });
  }
}
