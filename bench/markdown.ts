import { checkStatus, type GateStatus, type GateVerdict } from './gate.js'
import { sizeLabel } from './report-table.js'
import type { RunResult } from './run-result.js'
import { machineLabel } from './machine.js'

// The verdict as Markdown, for $GITHUB_STEP_SUMMARY and pull-request comments: the deciding checks
// first, with what to do when one fails, then the loop delay people feel, in a folded section.

const ICON: Readonly<Record<GateStatus, string>> = { pass: '✅', fail: '❌', inconclusive: '⚠️' }
const WORD: Readonly<Record<GateStatus, string>> = { pass: 'PASS', fail: 'FAIL', inconclusive: 'INCONCLUSIVE' }
const ms = (n: number): string => n.toFixed(2)
const cell = (text: string): string => text.replaceAll('|', '\\|').replaceAll('\n', ' ')

/** The run and its verdict as a Markdown summary. */
export function formatMarkdown (result: RunResult, verdict: GateVerdict, title = 'offload-store gate'): string {
  const out: string[] = [
    `## ${ICON[verdict.status]} ${title}: ${WORD[verdict.status]}`,
    '',
    `${machineLabel(result.machine)}, ${result.startedAt} (${result.scope})`,
    ''
  ]
  const deciding = verdict.checks.filter((c) => c.advisory !== true)
  const advisory = verdict.checks.filter((c) => c.advisory === true)
  const rows = (checks: typeof verdict.checks): string[] => [
    '| | check | figure | limit | detail |',
    '|---|---|---|---|---|',
    ...checks.map((c) => `| ${ICON[checkStatus(c)]} | ${cell(c.name)} | ${c.actual.toFixed(3)} | ${c.limit.toFixed(3)} | ${cell(c.detail)} |`)
  ]
  if (deciding.length > 0) out.push('**Deciding checks**', '', ...rows(deciding), '')
  const advice = verdict.checks.filter((c) => checkStatus(c) !== 'pass' && c.advice !== undefined)
  if (advice.length > 0) {
    out.push('**What to do**', '')
    for (const c of advice) out.push(`- ${c.advisory === true ? '(advisory) ' : ''}**${cell(c.name)}**: ${c.advice ?? ''}`)
    out.push('')
  }
  if (advisory.length > 0) out.push('<details><summary>Advisory checks (reported, not deciding)</summary>', '', ...rows(advisory), '', '</details>', '')
  if (result.cpu !== undefined) {
    const c = result.cpu
    out.push(`CPU verdict: ${c.rounds} rounds of ${c.savesPerSlice} saves per arm in ${(c.elapsedMs / 1000).toFixed(1)} s at ${sizeLabel(c.stateBytes)}; structured clone ${ms(c.reference.cloneMs)} ms, bare thread hop ${(c.reference.hopMs * 1000).toFixed(0)} µs; the main thread waited for a CPU ${(c.runQueueWaitShare * 100).toFixed(1)}% of the time (scheduler noise).`, '')
  }
  if (result.loopLatency.length > 0) {
    out.push('<details><summary>Event-loop delay while saving (ms)</summary>', '', '| scenario | mode | p50 | p99 | max | Δp99 | ELU | run-queue wait |', '|---|---|---|---|---|---|---|---|')
    for (const { params, modes } of result.loopLatency) {
      for (const mode of ['idle', 'inline', 'offloaded'] as const) {
        const f = modes[mode]
        out.push(`| ${mode === 'idle' ? params.name : ''} | ${mode} | ${ms(f.loop.p50Ms)} | ${ms(f.loop.p99Ms)} | ${ms(f.loop.maxMs)} | ${mode === 'idle' ? '' : ms(f.loop.p99Ms - modes.idle.loop.p99Ms)} | ${(f.loop.elu * 100).toFixed(0)}% | ${(f.loop.runQueueWaitShare * 100).toFixed(1)}% |`)
      }
    }
    out.push('', '</details>', '')
  }
  return out.join('\n')
}
