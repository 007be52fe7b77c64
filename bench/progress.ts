/** Reports progress on stderr, so stdout stays clean for `--reporter json`. */
export interface Progress {
  step: (label: string) => void
  done: () => void
}

/** A progress line: rewritten in place on a terminal, one line per step otherwise (CI logs). */
export function progressLine (total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  const started = Date.now()
  let index = 0
  return {
    step: (label) => {
      index++
      const line = `[${index}/${total}] ${label} (${((Date.now() - started) / 1000).toFixed(0)} s)`
      if (stream.isTTY) stream.write(`\r\x1b[2K${line}`)
      else stream.write(`${line}\n`)
    },
    done: () => {
      if (stream.isTTY) stream.write('\r\x1b[2K')
      stream.write(`done in ${((Date.now() - started) / 1000).toFixed(0)} s\n`)
    }
  }
}
