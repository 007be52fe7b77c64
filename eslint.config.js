import neostandard from 'neostandard'

export default neostandard({
  ts: true,
  ignores: ['dist/**', 'bench/dist/**', 'bench/results/**', 'node_modules/**']
})
