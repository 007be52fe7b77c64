import { writeFileSync } from 'node:fs'
import * as vega from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'
import type { LoopStats } from './loop-monitor.js'
import type { RunResult } from './run-result.js'
import { type TargetsConfig, targetRows } from './targets.js'

// Dev-only: vega and vega-lite are devDependencies, so the published bin never imports this file.

type Panel = Extract<TopLevelSpec, { vconcat: unknown }>['vconcat'][number]

const MODES = ['idle', 'inline', 'offloaded'] as const
const COLORS = { domain: ['idle', 'inline', 'offloaded'], range: ['#9e9e9e', '#d62728', '#2ca02c'] }

/** One grouped bar panel of the loop-latency matrix: one figure per scenario and mode. */
function loopPanel (result: RunResult, title: string, field: string, pick: (loop: LoopStats) => number, log: boolean): Panel {
  const values = result.loopLatency.flatMap(({ params, modes }) => MODES.map((mode) => ({ scenario: params.name, mode, [field]: Number(pick(modes[mode].loop).toFixed(3)) })))
  return {
    title,
    data: { values },
    mark: 'bar',
    width: { step: 14 },
    height: 160,
    encoding: {
      x: { field: 'scenario', type: 'nominal', sort: null, axis: { labelAngle: -40, labelLimit: 400, title: null } },
      xOffset: { field: 'mode', sort: [...MODES] },
      // A log scale must not start at 0; the idle floor is about 1 ms, so 0.5 keeps every bar visible.
      y: { field, type: 'quantitative', ...(log ? { scale: { type: 'log', domainMin: 0.5, clamp: true } } : {}), title: field },
      color: { field: 'mode', scale: COLORS, title: 'mode' },
      tooltip: [{ field: 'scenario' }, { field: 'mode' }, { field }]
    }
  }
}

/** The keyed state: p99 and max of each window kind, with the target line over idle. */
function keyedPanel (result: RunResult): Panel | undefined {
  const k = result.keyed
  if (k === undefined) return undefined
  const rows: Array<[string, LoopStats]> = [['idle', k.idle], ['keyed saves', k.keyed.loop], ['journal idle', k.journal.idle], ['journal saves', k.journal.loop]]
  const values = rows.flatMap(([window, loop]) => [{ window, figure: 'p99', ms: Number(loop.p99Ms.toFixed(2)) }, { window, figure: 'max', ms: Number(loop.maxMs.toFixed(2)) }])
  return {
    title: `KeyedStore, ${k.entries} entries, 1% changed every ${k.keyed.intervalMs} ms: loop delay (ms, lower is better)`,
    data: { values },
    mark: 'bar',
    width: { step: 22 },
    height: 160,
    encoding: {
      x: { field: 'figure', type: 'nominal', sort: ['p99', 'max'], title: null },
      xOffset: { field: 'window', sort: rows.map(([w]) => w) },
      y: { field: 'ms', type: 'quantitative', title: 'ms' },
      color: { field: 'window', sort: rows.map(([w]) => w), title: 'window' },
      tooltip: [{ field: 'window' }, { field: 'figure' }, { field: 'ms' }]
    }
  }
}

/** Each measured target as a bar of figure / target: at most 1 is met for "at most" targets. */
function targetsPanel (result: RunResult, targets: TargetsConfig | undefined): Panel | undefined {
  if (targets === undefined) return undefined
  const values = targetRows(result, targets).flatMap((row) => row.actual === undefined
    ? []
    : [{ figure: `${row.figure} (${row.kind === 'max' ? '<=' : '>='} ${row.target})`, share: Number((row.kind === 'max' ? row.actual / row.target : row.target / Math.max(row.actual, 1e-9)).toFixed(3)), status: row.status }])
  if (values.length === 0) return undefined
  return {
    title: 'targets: figure against its target (1 = at the target; lower is better, bars past 1 miss it)',
    data: { values },
    layer: [
      { mark: 'bar', encoding: { y: { field: 'figure', type: 'nominal', sort: null, title: null, axis: { labelLimit: 500 } }, x: { field: 'share', type: 'quantitative', title: 'figure / target' }, color: { field: 'status', scale: { domain: ['pass', 'fail'], range: ['#2ca02c', '#d62728'] } } } },
      { mark: { type: 'rule', color: 'black' }, encoding: { x: { datum: 1 } } }
    ],
    width: 300
  }
}

/** The vega-lite spec: loop delay p99, max and ELU per scenario by mode, the keyed state, the targets and throughput. */
function chartSpec (result: RunResult, targets?: TargetsConfig): TopLevelSpec {
  const throughput = result.throughput === undefined
    ? []
    : [
        { what: 'bare fsync loop (limit)', opsPerSec: Math.round(result.throughput.bareOpsPerSec) },
        { what: 'save()', opsPerSec: Math.round(result.throughput.saveOpsPerSec) }
      ]
  const title = `offload-store bench (${result.scope}), ${result.machine.cores} cores, Node ${result.machine.node}`
  const panels: Panel[] = [
    loopPanel(result, 'p99 event-loop delay while saving (ms, log scale, lower is better)', 'p99 ms', (l) => l.p99Ms, true),
    loopPanel(result, 'longest event-loop delay while saving (ms, log scale, lower is better)', 'max ms', (l) => l.maxMs, true),
    loopPanel(result, 'event-loop utilisation while saving (share of time busy, lower is better)', 'ELU', (l) => l.elu, false)
  ]
  const keyed = keyedPanel(result)
  if (keyed !== undefined) panels.push(keyed)
  const goals = targetsPanel(result, targets)
  if (goals !== undefined) panels.push(goals)
  panels.push({
    title: `durable 1 KB writes per second, sequential (higher is better; ratio ${result.throughput?.ratio.toFixed(2) ?? 'n/a'}${targets === undefined ? '' : `, target >= ${targets.durable.minRatio1KB}`})`,
    data: { values: throughput },
    mark: 'bar',
    width: 300,
    encoding: {
      y: { field: 'what', type: 'nominal', title: null, sort: null, axis: { labelLimit: 400 } },
      x: { field: 'opsPerSec', type: 'quantitative', title: 'writes/s' },
      color: { value: '#1f77b4' }
    }
  })
  return { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title, resolve: { scale: { color: 'independent' } }, vconcat: panels }
}

/** Renders the chart to SVG with vega's headless renderer and writes it to `path`. */
export async function writeChart (result: RunResult, path: string, targets?: TargetsConfig): Promise<void> {
  const view = new vega.View(vega.parse(compile(chartSpec(result, targets)).spec), { renderer: 'none' })
  const svg = await view.toSVG()
  view.finalize()
  writeFileSync(path, svg)
}
