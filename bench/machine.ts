import { arch, cpus, platform, release, totalmem } from 'node:os'

/** The machine a run was taken on, saved with every result so figures are never read out of context. */
export interface MachineInfo {
  readonly cpuModel: string
  readonly cores: number
  readonly totalMemoryMB: number
  readonly platform: string
  readonly osRelease: string
  readonly arch: string
  readonly node: string
  /**
   * Node and V8 flags the process ran with (its execArgv, then NODE_OPTIONS). `--v8-pool-size`
   * alone moves the loop-delay tails of a 2-core machine by several ms. Absent in older runs.
   */
  readonly runtimeFlags?: readonly string[]
}

/** Describes the current machine. */
export function describeMachine (): MachineInfo {
  const list = cpus()
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    totalMemoryMB: Math.round(totalmem() / 2 ** 20),
    platform: platform(),
    osRelease: release(),
    arch: arch(),
    node: process.version,
    runtimeFlags: [...process.execArgv, ...(process.env['NODE_OPTIONS'] ?? '').split(/\s+/).filter((flag) => flag !== '')]
  }
}

/** The machine in one line, for report headers: CPU, cores, Node, and the flags when there were any. */
export function machineLabel (m: MachineInfo): string {
  const flags = m.runtimeFlags === undefined || m.runtimeFlags.length === 0 ? '' : ` (${m.runtimeFlags.join(' ')})`
  return `${m.cpuModel}, ${m.cores} cores, Node ${m.node}${flags}`
}

/** True when two runs' flags may differ in what they measure: both recorded, and not the same. */
export function flagsDiffer (a: MachineInfo, b: MachineInfo): boolean {
  if (a.runtimeFlags === undefined || b.runtimeFlags === undefined) return false
  return a.runtimeFlags.join(' ') !== b.runtimeFlags.join(' ')
}
