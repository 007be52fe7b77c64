import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { generateState } from '../bench/data.js'
import { tempDir } from './helpers.js'

// The workflow of docs/ci-gate.md, run locally: its steps' `run:` scripts exactly as written, in a
// project holding a codec and a sample at the paths the workflow names. Two things stand in for
// GitHub: a `gh` that "downloads" the artifact the first run stored, and an `npx` function that
// points `offload-store-bench` at the built bin (with --pattern none and a short time budget, so
// the test stays quick).

const docs = fileURLToPath(new URL('../../docs/ci-gate.md', import.meta.url))
const bin = fileURLToPath(new URL('../bench/cli.js', import.meta.url))

interface Step { readonly name: string, readonly run: string, readonly condition?: string }

function workflowSteps (): Step[] {
  const yaml = /```yaml\n([\s\S]*?)```/.exec(readFileSync(docs, 'utf8'))?.[1]
  assert.ok(yaml !== undefined, 'docs/ci-gate.md has a yaml block')
  const steps: Step[] = []
  for (const block of yaml.split(/\n {6}- /).slice(1)) {
    const name = /^name: (.*)$/m.exec(block)?.[1] ?? /^run: (.*)$/m.exec(block)?.[1] ?? ''
    const condition = /^ {8}if: (.*)$/m.exec(block)?.[1]
    const script = /run: \|\n((?: {10}.*\n?)+)/.exec(block)?.[1]
    const line = /^(?:- )?run: (?!\|)(.*)$/m.exec(block)?.[1]
    const run = script === undefined ? line : script.split('\n').map((l) => l.slice(10)).join('\n')
    if (run !== undefined) steps.push({ name, run, ...(condition === undefined ? {} : { condition }) })
  }
  return steps
}

async function bash (script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number, stdout: string }> {
  return await new Promise((resolve) => {
    execFile('bash', ['-eo', 'pipefail', '-c', script], { cwd, env, timeout: 90_000 }, (err, stdout) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1
      resolve({ code, stdout })
    })
  })
}

test('the GitHub Actions workflow in docs/ci-gate.md runs as written: a push stores a baseline, a pull request fetches and compares with it', async () => {
  const steps = workflowSteps()
  assert.deepEqual(steps.map((s) => s.name), ['npm ci', 'fetch the main branch\'s baseline', 'main-thread CPU per save of our codec'])
  const project = tempDir('offload-store-bench-workflow-')
  mkdirSync(join(project, 'src'))
  mkdirSync(join(project, 'fixtures'))
  writeFileSync(join(project, 'src', 'state-codec.mjs'), 'export const encode = (value) => JSON.stringify(value)\nexport const decode = (bytes) => JSON.parse(Buffer.from(bytes).toString())\n')
  writeFileSync(join(project, 'fixtures', 'state.json'), JSON.stringify(generateState(150_000)))
  const artifacts = join(project, '.artifacts')
  mkdirSync(artifacts)
  // gh: `run list` answers one run id; `run download <id> --name N --dir D` copies the stored artifact N into D.
  const fakeBin = join(project, '.bin')
  mkdirSync(fakeBin)
  writeFileSync(join(fakeBin, 'gh'), `#!/usr/bin/env bash\nif [ "$1 $2" = "run list" ]; then echo 42; exit 0; fi\nif [ "$1 $2" = "run download" ]; then\n  while [ $# -gt 0 ]; do case "$1" in --name) name=$2; shift;; --dir) dir=$2; shift;; esac; shift; done\n  [ -d "${artifacts}/$name" ] || exit 1\n  mkdir -p "$dir" && cp "${artifacts}/$name"/* "$dir"/\n  exit 0\nfi\nexit 2\n`)
  chmodSync(join(fakeBin, 'gh'), 0o755)
  const npx = `npx () { if [ "$1" = offload-store-bench ]; then shift; node ${JSON.stringify(bin)} --pattern none --time-budget 4000 "$@"; else echo "unexpected npx $*" >&2; return 2; fi; }\n`
  const summary = join(project, 'summary.md')
  const env = { ...process.env, PATH: `${fakeBin}:${process.env['PATH'] ?? ''}`, GITHUB_STEP_SUMMARY: summary, GH_TOKEN: 'unused' }
  const gateStep = steps[2] as Step
  const fetchStep = steps[1] as Step
  assert.equal(fetchStep.condition, "github.event_name == 'pull_request'")

  // A push to main: no fetch step, the gate runs without a baseline; the upload step stores its JSON.
  const push = await bash(npx + gateStep.run, project, env)
  assert.equal(push.code, 0, `the push run passed (or was inconclusive, a warning): ${push.stdout.slice(-2000)}`)
  assert.ok(existsSync(join(project, 'encoder-gate.json')))
  mkdirSync(join(artifacts, 'encoder-gate-baseline'))
  copyFileSync(join(project, 'encoder-gate.json'), join(artifacts, 'encoder-gate-baseline', 'encoder-gate.json'))

  // A pull request: the fetch step downloads the baseline, the gate compares with it.
  const fetched = await bash(fetchStep.run, project, env)
  assert.equal(fetched.code, 0)
  assert.ok(existsSync(join(project, 'baseline', 'encoder-gate.json')), 'the fetch step downloaded the baseline')
  const pr = await bash(npx + gateStep.run, project, env)
  assert.equal(pr.code, 0, pr.stdout.slice(-2000))
  const run = JSON.parse(readFileSync(join(project, 'encoder-gate.json'), 'utf8')) as { gate: { checks: Array<{ name: string }> } }
  assert.ok(run.gate.checks.some((c) => c.name.startsWith('cpu baseline store/user-codec')), 'the pull request was compared with the baseline')
  assert.equal(readFileSync(summary, 'utf8').match(/^## .* offload-store-bench: /gm)?.length, 2, 'both runs added a summary')
})
