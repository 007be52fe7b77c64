import { appendFileSync } from 'node:fs'
import { EXIT, type GateVerdict } from './gate.js'
import { formatMarkdown } from './markdown.js'
import { formatReport } from './report-table.js'
import type { RunResult } from './run-result.js'
import type { TargetsConfig } from './targets.js'

/** Where a run's outcome goes: stdout as a table or JSON, and optionally a Markdown file. */
export interface OutputOptions {
  readonly json: boolean
  /** Appended to (not replaced), so `--markdown "$GITHUB_STEP_SUMMARY"` adds to the job's summary. */
  readonly markdown?: string
  readonly title?: string
  /** Printed with the report, each figure beside its target. */
  readonly targets?: TargetsConfig | undefined
}

/** Prints the run (and its verdict) and returns the exit code of the verdict. */
export function emitRun (result: RunResult, verdict: GateVerdict | undefined, options: OutputOptions): number {
  const judged: RunResult = verdict === undefined ? result : { ...result, gate: verdict }
  if (options.json) console.log(JSON.stringify(judged, null, 2))
  else console.log(formatReport(result, verdict, options.targets))
  if (options.markdown !== undefined && verdict !== undefined) appendFileSync(options.markdown, formatMarkdown(result, verdict, options.title) + '\n')
  return verdict === undefined ? EXIT.pass : EXIT[verdict.status]
}

/** Prints an error that stopped the run, and returns the error exit code. */
export function emitError (err: unknown, options: OutputOptions): number {
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
  console.error(`error: ${message}`)
  if (options.json) console.log(JSON.stringify({ schemaVersion: 2, error: message }, null, 2))
  if (options.markdown !== undefined) appendFileSync(options.markdown, `## ⛔ ${options.title ?? 'offload-store gate'}: ERROR\n\n${message}\n`)
  return EXIT.error
}
