import { writeFileSync } from 'node:fs'
import * as vega from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'
import type { RunResult } from './run-result.js'

// Dev-only: vega and vega-lite are devDependencies, so the published bin never imports this file.

/** The vega-lite spec: p99 loop delay per scenario by mode, and save() throughput against the fsync limit. */
function chartSpec (result: RunResult): TopLevelSpec {
  const loop = result.loopLatency.flatMap(({ params, modes }) => (['idle', 'inline', 'offloaded'] as const).map((mode) => ({
    scenario: params.name,
    mode,
    p99: Number(modes[mode].loop.p99Ms.toFixed(2))
  })))
  const throughput = result.throughput === undefined
    ? []
    : [
        { what: 'bare fsync loop (limit)', opsPerSec: Math.round(result.throughput.bareOpsPerSec) },
        { what: 'save()', opsPerSec: Math.round(result.throughput.saveOpsPerSec) }
      ]
  const title = `offload-store bench (${result.scope}), ${result.machine.cores} cores, Node ${result.machine.node}`
  const colors = { domain: ['idle', 'inline', 'offloaded'], range: ['#9e9e9e', '#d62728', '#2ca02c'] }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    vconcat: [
      {
        title: 'p99 event-loop delay while saving (ms, log scale)',
        data: { values: loop },
        mark: 'bar',
        width: { step: 14 },
        height: 220,
        encoding: {
          x: { field: 'scenario', type: 'nominal', sort: null, axis: { labelAngle: -40, labelLimit: 400, title: null } },
          xOffset: { field: 'mode', sort: ['idle', 'inline', 'offloaded'] },
          // A log scale must not start at 0; the idle floor is about 1 ms, so 0.5 keeps every bar visible.
          y: { field: 'p99', type: 'quantitative', scale: { type: 'log', domainMin: 0.5, clamp: true }, title: 'p99 loop delay (ms)' },
          color: { field: 'mode', scale: colors, title: 'mode' },
          tooltip: [{ field: 'scenario' }, { field: 'mode' }, { field: 'p99' }]
        }
      },
      {
        title: `durable 1 KB writes per second, sequential (ratio ${result.throughput?.ratio.toFixed(2) ?? 'n/a'})`,
        data: { values: throughput },
        mark: 'bar',
        width: 300,
        encoding: {
          y: { field: 'what', type: 'nominal', title: null, sort: null, axis: { labelLimit: 400 } },
          x: { field: 'opsPerSec', type: 'quantitative', title: 'writes/s' },
          color: { value: '#1f77b4' }
        }
      }
    ]
  }
}

/** Renders the chart to SVG with vega's headless renderer and writes it to `path`. */
export async function writeChart (result: RunResult, path: string): Promise<void> {
  const view = new vega.View(vega.parse(compile(chartSpec(result)).spec), { renderer: 'none' })
  const svg = await view.toSVG()
  view.finalize()
  writeFileSync(path, svg)
}
