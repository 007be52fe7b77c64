import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

// Tests run from dist/test, so the repository root is two levels up.
const root = fileURLToPath(new URL('../../', import.meta.url))
const docsDir = join(root, 'docs')
const docsPages = readdirSync(docsDir).filter((name) => name.endsWith('.md')).sort()
const checked = [
  'README.md',
  'CHANGELOG.md',
  'examples/fastify-server/README.md',
  ...docsPages.map((name) => `docs/${name}`)
].filter((file) => existsSync(join(root, file)))

/** Markdown without fenced code blocks, where `[a](b)` is code, not a link. */
function withoutFences (markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '')
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf (markdown: string): Set<string> {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  for (const [, text] of withoutFences(markdown).matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const slug = (text ?? '').toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-')
    const count = seen.get(slug) ?? 0
    seen.set(slug, count + 1)
    anchors.add(count === 0 ? slug : `${slug}-${count}`)
  }
  for (const [, id] of markdown.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(id ?? '')
  return anchors
}

/** Every relative link target in a Markdown file: inline links and images, outside code. */
function relativeLinks (markdown: string): string[] {
  const prose = withoutFences(markdown).replace(/`[^`\n]*`/g, '')
  return [...prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)]
    .map((m) => m[1] ?? '')
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target) && !target.startsWith('//'))
}

test('every relative link in README.md and docs/ points at a file that exists, and at a heading that exists', () => {
  const broken: string[] = []
  let links = 0
  for (const file of checked) {
    const source = join(root, file)
    for (const target of relativeLinks(readFileSync(source, 'utf8'))) {
      links++
      const [pathPart = '', anchor] = target.split('#', 2)
      const targetFile = pathPart === '' ? source : resolve(dirname(source), decodeURIComponent(pathPart))
      if (!existsSync(targetFile)) {
        broken.push(`${file}: ${target} (no ${relative(root, targetFile)})`)
        continue
      }
      if (anchor === undefined || anchor === '') continue
      if (!targetFile.endsWith('.md') || statSync(targetFile).isDirectory()) {
        broken.push(`${file}: ${target} (an anchor into a file that is not Markdown)`)
        continue
      }
      if (!anchorsOf(readFileSync(targetFile, 'utf8')).has(decodeURIComponent(anchor))) {
        broken.push(`${file}: ${target} (no heading #${anchor} in ${relative(root, targetFile)})`)
      }
    }
  }
  assert.ok(links > 0, 'the documents hold relative links')
  assert.deepEqual(broken, [])
})

test('the README and the docs index link to every page under docs/', () => {
  const readmeTargets = new Set(relativeLinks(readFileSync(join(root, 'README.md'), 'utf8')).map((t) => t.split('#')[0]))
  const indexTargets = new Set(relativeLinks(readFileSync(join(docsDir, 'README.md'), 'utf8')).map((t) => t.split('#')[0]))
  const pages = docsPages.filter((name) => name !== 'README.md')
  assert.deepEqual(pages.filter((name) => !readmeTargets.has(`docs/${name}`)), [], 'pages the README does not link to')
  assert.deepEqual(pages.filter((name) => !indexTargets.has(name)), [], 'pages docs/README.md does not link to')
})

test('heading anchors follow GitHub: code, punctuation and case dropped, repeats numbered', () => {
  const anchors = anchorsOf('# `new Store<T>(options)`\n## Output: exit codes, Markdown, JSON\n## Limits\n## Limits\n```\n# not a heading\n```\n')
  assert.deepEqual([...anchors], ['new-storetoptions', 'output-exit-codes-markdown-json', 'limits', 'limits-1'])
})
