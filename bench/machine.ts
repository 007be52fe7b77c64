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
    node: process.version
  }
}
