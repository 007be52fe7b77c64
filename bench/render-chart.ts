import { readFileSync } from 'node:fs'
import { writeChart } from './chart.js'
import { readGateConfig } from './gate.js'
import type { RunResult } from './run-result.js'

// Re-renders the SVG of saved results (e.g. the committed sample) without running the suite:
// node dist/bench/render-chart.js bench/results/sample/<file>.json

const files = process.argv.slice(2)
if (files.length === 0) {
  console.error('usage: node dist/bench/render-chart.js results.json [...]')
  process.exit(2)
}
const { targets } = readGateConfig(new URL('../../bench/gate.config.json', import.meta.url))
for (const file of files) {
  const svg = file.replace(/\.json$/, '') + '.svg'
  await writeChart(JSON.parse(readFileSync(file, 'utf8')) as RunResult, svg, targets)
  console.error(`wrote ${svg}`)
}
