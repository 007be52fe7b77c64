import { checkStatus, type GateVerdict } from './gate.js'
import type { LoopStats } from './loop-monitor.js'
import type { HopFigures, RunResult } from './run-result.js'
import type { PostgresResult } from './scenarios/postgres.js'
import type { KeyedWindowFigures, PostgresKeyedResult } from './scenarios/postgres-keyed.js'
import { formatTargets, type TargetsConfig, targetRows } from './targets.js'
import { machineLabel } from './machine.js'

function table (headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string => cells.map((c, i) => i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)).join('  ')
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

const ms = (n: number): string => n.toFixed(2)
const pct = (n: number): string => `${(n * 100).toFixed(0)}%`
const rounds = (ratios: readonly number[]): string => ratios.map((r) => r.toFixed(2)).join(', ')
const hopText = (hop: HopFigures | undefined): string => hop === undefined ? '' : `; a bare worker hop ${hop.opsPerSec.toFixed(0)}/s, ratio ${hop.ratio.toFixed(2)} (rounds: ${rounds(hop.roundRatios)})`

/** The main-thread table's floor columns, each a median of per-call ratios like `call / stringify`. */
const FLOOR_HEADERS = ['stringify + post / stringify', 'clone + post / stringify', 'serialize + transfer / stringify', 'lossy call / stringify'] as const

/** Formats a byte count as the scenario names do: 1KB, 150KB, 1.5MB (and 26B below a kilobyte). */
export function sizeLabel (bytes: number): string {
  if (bytes < 1000) return `${bytes}B`
  if (bytes >= 1_000_000) return `${Number((bytes / 1_000_000).toFixed(1))}MB`
  return `${Math.round(bytes / 1000)}KB`
}

/**
 * Below this state size a ratio to JSON.stringify compares fixed costs (a call, a post) with a
 * stringify of microseconds: it says nothing about the hand-off, so the report leaves it out.
 */
const RATIO_MIN_BYTES = 100_000

/** The run as terminal tables: loop latency per scenario and mode, then the other scenarios, the targets, then the gate. */
export function formatReport (result: RunResult, verdict?: GateVerdict, targets?: TargetsConfig): string {
  const out: string[] = [`offload-store bench (${result.scope}) on ${machineLabel(result.machine)}, ${result.startedAt}`, '']
  if (result.loopLatency.length > 0) {
    out.push('Loop delay while saving (ms, lower is better; the idle floor includes the 1 ms sampling resolution). Δp99 = p99 - idle p99; ELU = share of the time the loop was busy.')
    const rows: string[][] = []
    for (const { params, modes } of result.loopLatency) {
      for (const mode of ['idle', 'inline', 'offloaded'] as const) {
        const f = modes[mode]
        rows.push([
          mode === 'idle' ? `${params.name} (${sizeLabel(params.actualBytes)})` : '',
          mode,
          ms(f.loop.p50Ms), ms(f.loop.p99Ms), ms(f.loop.maxMs),
          mode === 'idle' ? '' : ms(f.loop.p99Ms - modes.idle.loop.p99Ms),
          pct(f.loop.elu),
          String(f.requests),
          mode === 'idle' ? '' : String(f.writes),
          mode === 'idle' ? '' : ms(f.mainPerWrite.p50Ms),
          mode === 'idle' ? '' : `${ms(f.saveLatency.p50Ms)} / ${ms(f.saveLatency.p99Ms)}`,
          f.memory.rssMB.toFixed(0)
        ])
      }
    }
    out.push(table(['scenario', 'mode', 'p50', 'p99', 'max', 'Δp99', 'ELU', 'requests', 'writes', 'main/write', 'save p50 / p99', 'RSS MB'], rows), '')
  }
  if (result.throughput !== undefined) {
    const t = result.throughput
    out.push(`Durable writes of ${t.payloadBytes} B, sequential (higher is better): save() ${t.saveOpsPerSec.toFixed(0)}/s, bare fsync loop ${t.bareOpsPerSec.toFixed(0)}/s, ratio ${t.ratio.toFixed(2)} (rounds: ${rounds(t.roundRatios)})${hopText(t.hop)}; the library's atomicWriteSync on the main thread ${t.atomicWriteOpsPerSec.toFixed(0)}/s`)
    for (const [label, pair] of [['1 MB', t.large], ["1 KB, durability 'none' against the loop without fsync", t.noSync]] as const) {
      if (pair !== undefined) out.push(`  ${label}: save() ${pair.saveOpsPerSec.toFixed(0)}/s, bare ${pair.bareOpsPerSec.toFixed(0)}/s, ratio ${pair.ratio.toFixed(2)} (rounds: ${rounds(pair.roundRatios)})${hopText(pair.hop)}`)
    }
    if (t.hop !== undefined) out.push('  (a bare worker hop: a raw worker thread doing the bare loop\'s syscalls per message, awaited one by one: the most any worker offload reaches on this machine)')
    out.push('')
  }
  if (result.manyStores !== undefined) {
    const s = result.manyStores
    out.push(`${s.stores} stores saving concurrently: ${s.writesPerSec.toFixed(0)} writes/s, loop p50/p99/max ${ms(s.loop.p50Ms)}/${ms(s.loop.p99Ms)}/${ms(s.loop.maxMs)} ms, ELU ${pct(s.loop.elu)}, save p50/p99 ${ms(s.saveLatency.p50Ms)}/${ms(s.saveLatency.p99Ms)} ms, RSS ${s.memory.rssMB.toFixed(0)} MB`, '')
  }
  if (result.handoff !== undefined) {
    out.push(`Main-thread cost of one save (ms, lower is better; codecs.json()): the hand-off is JSON.stringify plus the JSON check at write start, so it grows with the state like JSON.stringify does. No ratio below ${sizeLabel(RATIO_MIN_BYTES)}: there it compares fixed costs with a stringify of microseconds.`)
    const floored = result.handoff.rows.some((r) => r.floors !== undefined)
    const ratio = (r: { readonly actualBytes: number }, value: number | undefined): string => value === undefined ? '' : r.actualBytes < RATIO_MIN_BYTES ? '—' : value.toFixed(2)
    out.push(table(['state', 'JSON.stringify', 'v8.serialize', 'hand-off (mainMs)', 'save() call', 'call / stringify', ...(floored ? FLOOR_HEADERS : [])], result.handoff.rows.map((r) => [
      sizeLabel(r.actualBytes), ms(r.stringifyMs), ms(r.v8SerializeMs), ms(r.handoffMs), ms(r.saveCallMs), ratio(r, r.ratioToStringify),
      ...(floored ? [ratio(r, r.floors?.stringifyPost.ratioToStringify), ratio(r, r.floors?.clonePost.ratioToStringify), ratio(r, r.floors?.serializeTransfer.ratioToStringify), ratio(r, r.floors?.lossy.ratioToStringify)] : [])
    ])), '')
    if (floored) out.push('Floors, timed beside each save() against a JSON.stringify of their own: stringify + post = JSON.stringify then postMessage(text) to a raw worker (the least any design that stringifies on the main thread costs); clone + post = postMessage(state), the structured clone of postMessage itself; serialize + transfer = v8.serialize(state) posted with its bytes transferred, as the store does for schema and module codecs (the least a design that encodes in the worker costs); lossy = save() under codecs.json({ lossy: true }), the library without the JSON check.', '')
    const others = result.handoff.codecRows ?? []
    if (others.length > 0) {
      out.push('The other codecs: save() call on the main thread (ms) against JSON.stringify of the same value in the same run.')
      out.push(table(['state', 'codec', 'JSON.stringify', 'save() call', 'call / stringify'], others.map((r) => [
        sizeLabel(r.actualBytes), r.codec, ms(r.stringifyMs), ms(r.saveCallMs), r.actualBytes < RATIO_MIN_BYTES ? '—' : r.ratioToStringify.toFixed(2)
      ])), '')
    }
  }
  if (result.codecCost !== undefined) {
    out.push('Compression and encryption (ms, medians): the main thread per save through a Store, the worker\'s encode, and the same work inline.')
    out.push(table(['state', 'codec', 'file', 'ratio', 'main/save offloaded', 'worker encode', 'inline'], result.codecCost.rows.map((r) => [
      sizeLabel(r.jsonBytes), r.codec, sizeLabel(r.fileBytes), r.ratio.toFixed(1), ms(r.offloadedMainMs), ms(r.workerEncodeMs), ms(r.inlineMs)
    ])), '')
    out.push('Loading a gzip file, main-thread ms: inflate + parse here, parse only (inflate on the thread pool), or deserialize a worker\'s clone.')
    out.push(table(['state', 'gzip', 'sync', 'thread pool', 'worker + clone'], result.codecCost.loadPaths.map((r) => [
      sizeLabel(r.jsonBytes), sizeLabel(r.gzipBytes), ms(r.syncMs), ms(r.threadPoolMs), ms(r.workerCloneMs)
    ])), '')
  }
  if (result.keyed !== undefined) {
    const k = result.keyed
    out.push(`KeyedStore, ${k.entries} entries (${sizeLabel(k.stateBytes)}), ${k.keyed.changedPercent}% changed every ${k.keyed.intervalMs} ms (loop delay ms, lower is better):`)
    out.push(table(['', 'p50', 'p99', 'max', 'ELU'], [
      ['idle', ms(k.idle.p50Ms), ms(k.idle.p99Ms), ms(k.idle.maxMs), pct(k.idle.elu)],
      ['keyed saves', ms(k.keyed.loop.p50Ms), ms(k.keyed.loop.p99Ms), ms(k.keyed.loop.maxMs), pct(k.keyed.loop.elu)],
      ['journal idle', ms(k.journal.idle.p50Ms), ms(k.journal.idle.p99Ms), ms(k.journal.idle.maxMs), pct(k.journal.idle.elu)],
      ['journal saves', ms(k.journal.loop.p50Ms), ms(k.journal.loop.p99Ms), ms(k.journal.loop.maxMs), pct(k.journal.loop.elu)]
    ]))
    out.push(`main thread per save: p50 ${ms(k.keyed.mainMs.p50Ms)} ms, p99 ${ms(k.keyed.mainMs.p99Ms)} ms (${k.keyed.mainMs.count} writes) against ${ms(k.wholeHandoffMs)} ms to hand the whole state to a worker: ratio ${k.keyedToWholeRatio.toFixed(3)}`)
    out.push(`one-entry change: ${ms(k.scaling.smallMs)} ms at ${k.scaling.smallEntries} entries, ${ms(k.scaling.largeMs)} ms at ${k.scaling.largeEntries} (x${k.scaling.ratio.toFixed(2)})`)
    out.push(`journal: ${k.journal.savesPerSec.toFixed(0)} sequential durable saves/s of ${k.journal.changedPerSave} changed entries`, '')
  }
  if (result.million !== undefined) {
    const m = result.million
    out.push(`A million entries (${sizeLabel(m.fileBytes)} file), medians, ms (lower is better):`)
    out.push(table(['', 'ms', 'ratio', 'loop p99', 'loop max'], [
      ['idle (1 s)', '', '', ms(m.idle.p99Ms), ms(m.idle.maxMs)],
      ['Store.load()', ms(m.storeLoadMs), '', '', ''],
      ['KeyedStore.load()', ms(m.keyedLoadMs), m.loadRatio.toFixed(2), ms(m.loadLoop.p99Ms), ms(m.loadLoop.maxMs)],
      ['JSON.stringify + durable write', ms(m.inlineSaveMs), '', '', ''],
      ['KeyedStore first saveNow()', ms(m.firstSaveMs), m.firstSaveRatio.toFixed(2), ms(m.saveLoop.p99Ms), ms(m.saveLoop.maxMs)]
    ]), '')
  }
  if (result.postgres !== undefined) out.push(...formatPostgres(result.postgres), '')
  if (targets !== undefined) out.push(...formatTargets(targetRows(result, targets)), '')
  if (result.memory.length > 0) {
    const peak = Math.max(...result.memory.map((c) => c.peakRssMB))
    const heaps = result.memory.map((c) => `${c.after} ${c.heapUsedMB.toFixed(0)}`)
    out.push(`Peak RSS ${peak.toFixed(0)} MB. Heap used after each scenario (MB): ${heaps.join(', ')}`, '')
  }
  if (result.cpu !== undefined) {
    const c = result.cpu
    out.push(`Main-thread CPU per durable save (${c.rounds} rounds of ${c.savesPerSlice} saves per arm, ${(c.elapsedMs / 1000).toFixed(1)} s, ${sizeLabel(c.stateBytes)}; structured clone ${ms(c.reference.cloneMs)} ms, bare thread hop ${(c.reference.hopMs * 1000).toFixed(0)} µs, run-queue wait ${(c.runQueueWaitShare * 100).toFixed(1)}% of the time):`)
    for (const s of c.subjects) out.push(`  ${s.name}: ${ms(s.cpuPerSaveMs)} ms${s.baseCpuPerSaveMs === undefined ? '' : ` (base build ${ms(s.baseCpuPerSaveMs)} ms)`}, ratio to ${s.deciding.reference} ${ms(s.deciding.median)} [${ms(s.deciding.interval.low)}, ${ms(s.deciding.interval.high)}] → ${s.verdict}`)
    out.push('')
  }
  if (verdict !== undefined) {
    out.push(`Gate: ${verdict.status.toUpperCase()}`)
    const label = { pass: 'ok  ', fail: 'FAIL', inconclusive: '??  ' } as const
    for (const check of verdict.checks) {
      out.push(`  ${label[checkStatus(check)]} ${check.advisory === true ? '(advisory) ' : ''}${check.name}: ${check.detail}`)
      if (checkStatus(check) !== 'pass' && check.advice !== undefined) out.push(`       what to do: ${check.advice}`)
    }
  }
  return out.join('\n')
}

/** The PostgreSQL section: loop delay with rows, saves/s against the bare pg loop, main thread file against PostgreSQL. */
function formatPostgres (pg: PostgresResult): string[] {
  if (pg.skipped !== undefined) return [`PostgreSQL target: skipped: ${pg.skipped}`]
  const out = [`PostgreSQL target (${pg.server} on this machine, over loopback, fsync and synchronous_commit on). Loop delay while saving (ms); inline = encode on the main thread + pg upsert:`]
  const rows: string[][] = []
  for (const { params, modes } of pg.loopLatency) {
    for (const mode of ['idle', 'inline', 'offloaded'] as const) {
      const f = modes[mode]
      const saving = mode !== 'idle'
      rows.push([
        mode === 'idle' ? `${params.name} (${sizeLabel(params.actualBytes)})` : '', mode,
        ms(f.loop.p50Ms), ms(f.loop.p99Ms), ms(f.loop.maxMs), saving ? ms(f.loop.p99Ms - modes.idle.loop.p99Ms) : '', pct(f.loop.elu),
        saving ? String(f.writes) : '', saving ? ms(f.mainPerWrite.p50Ms) : '', saving ? `${ms(f.saveLatency.p50Ms)} / ${ms(f.saveLatency.p99Ms)}` : ''
      ])
    }
  }
  out.push(table(['scenario', 'mode', 'p50', 'p99', 'max', 'Δp99', 'ELU', 'writes', 'main/write', 'save p50 / p99'], rows), '')
  out.push('Durable saves/s, sequential (higher is better): Store.save() with the PostgreSQL target against a bare pg loop (JSON.stringify + one autocommitted upsert of the same row shape on the main thread), alternating slices:')
  out.push(table(['payload', 'save()/s', 'bare pg/s', 'ratio', 'rounds'], pg.throughput.map((t) => [
    sizeLabel(t.payloadBytes), t.saveOpsPerSec.toFixed(0), t.bareOpsPerSec.toFixed(0), t.ratio.toFixed(2), t.roundRatios.map((r) => r.toFixed(2)).join(', ')
  ])), '')
  out.push('Main-thread ms per save of the same state (codecs.json(), medians of interleaved saves):')
  out.push(table(['state', 'file', 'PostgreSQL', 'ratio', 'saves'], pg.mainThread.map((r) => [
    sizeLabel(r.actualBytes), ms(r.fileMainMs), ms(r.postgresMainMs), r.ratio.toFixed(2), String(r.saves)
  ])))
  if (pg.keyed !== undefined) out.push('', ...formatPostgresKeyed(pg.keyed))
  return out
}

/** The large keyed state on PostgreSQL beside a file: loop delay against idle, main thread, rows per save, the durable round. */
function formatPostgresKeyed (k: PostgresKeyedResult): string[] {
  const out = [`KeyedStore on PostgreSQL and on a file, ${k.entries} entries (${sizeLabel(k.stateBytes)}), ${k.changedPerSave} (1%) changed every ${k.intervalMs} ms, windows interleaved (loop delay ms, lower is better):`]
  const row = (label: string, f: KeyedWindowFigures | undefined, loop: LoopStats): string[] => [
    label, ms(loop.p50Ms), ms(loop.p99Ms), ms(loop.maxMs), f === undefined ? '' : ms(loop.p99Ms - k.idle.p99Ms), f === undefined ? '' : ms(loop.maxMs - k.idle.maxMs), pct(loop.elu),
    f === undefined ? '' : f.savesPerSec.toFixed(1), f === undefined ? '' : `${ms(f.mainMs.p50Ms)} / ${ms(f.mainMs.p99Ms)}`
  ]
  out.push(table(['', 'p50', 'p99', 'max', 'Δp99', 'Δmax', 'ELU', 'saves/s', 'main/save p50 / p99'], [
    row('idle', undefined, k.idle), row('file', k.file, k.file.loop), row('PostgreSQL', k.postgres, k.postgres.loop)
  ]))
  const p = k.postgres
  out.push(`rows written per save, counted by the server (pg_stat_user_tables): ${p.rowsPerSave.toFixed(1)} (${p.rowsWritten} rows over ${p.rowWrites} saves that set ${p.entriesChanged} entries; the state has ${k.entries})`)
  const d = k.durable
  out.push(`durable saves/s of a 1% change, sequential: KeyedStore.saveNow() ${d.saveOpsPerSec.toFixed(0)}/s, bare pg upsert of the same ${k.changedPerSave} rows (unnest, one statement) ${d.bareOpsPerSec.toFixed(0)}/s, ratio ${d.ratio.toFixed(2)} (rounds: ${d.roundRatios.map((r) => r.toFixed(2)).join(', ')})`)
  return out
}
