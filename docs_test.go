package msc_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// The README is what a newcomer reads in five minutes; the depth is in
// docs/. These tests keep the README short, every relative link in it and
// in docs/ pointing to a file and a heading that exist, every page of
// docs/ reachable from the README, and its program a Go program.

// maxREADME is the most bytes README.md may have.
const maxREADME = 20000

func TestDocsREADMESize(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > maxREADME {
		t.Fatalf("README.md has %d bytes, more than %d: move the depth to docs/", len(b), maxREADME)
	}
}

// docPages returns README.md and every page of docs/.
func docPages(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) == 0 {
		t.Fatal("no docs/*.md")
	}
	return append([]string{"README.md"}, pages...)
}

var (
	fenceRE  = regexp.MustCompile("(?ms)^```.*?^```[ \t]*$")
	codeRE   = regexp.MustCompile("`[^`\n]*`")
	linkRE   = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headRE   = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t]*$`)
	schemeRE = regexp.MustCompile(`^[a-z][a-z0-9+.-]*:`)
)

// mdLinks returns the relative link targets of a Markdown text, outside
// code blocks and code spans.
func mdLinks(text string) []string {
	text = codeRE.ReplaceAllString(fenceRE.ReplaceAllString(text, ""), "")
	var out []string
	for _, m := range linkRE.FindAllStringSubmatch(text, -1) {
		if !schemeRE.MatchString(m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// mdAnchors returns the anchors GitHub gives the headings of a Markdown
// text: lower case, letters, digits, '-' and '_' kept, spaces made '-',
// the rest dropped; a repeated anchor gets -1, -2…
func mdAnchors(text string) map[string]bool {
	text = fenceRE.ReplaceAllString(text, "")
	out := map[string]bool{}
	seen := map[string]int{}
	for _, m := range headRE.FindAllStringSubmatch(text, -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteByte('-')
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			seen[a]++
			a = a + "-" + string(rune('0'+n))
		} else {
			seen[a] = 1
		}
		out[a] = true
	}
	return out
}

func TestDocsAnchors(t *testing.T) {
	got := mdAnchors("# Balance: spread keys over the nodes\n```sh\n# not a heading\n```\n" +
		"## check -balance: keys `spread`\n## Against hashicorp/raft and memberlist\n## Fencing terms\n## Fencing terms\n")
	for _, a := range []string{"balance-spread-keys-over-the-nodes", "check--balance-keys-spread", "against-hashicorpraft-and-memberlist", "fencing-terms", "fencing-terms-1"} {
		if !got[a] {
			t.Errorf("no anchor %q in %v", a, got)
		}
	}
	if got["not-a-heading"] {
		t.Errorf("a comment in a code block taken for a heading")
	}
	links := mdLinks("[a](docs/a.md) `[b](b.md)` [c](https://x.org/c) [d](#d)\n```\n[e](e.md)\n```\n")
	if strings.Join(links, " ") != "docs/a.md #d" {
		t.Errorf("links %q", links)
	}
}

// TestDocsLinks: every relative link of README.md and docs/*.md leads to
// an existing file, and to an existing heading when it names one; every
// page of docs/ is reachable from the README.
func TestDocsLinks(t *testing.T) {
	pages := docPages(t)
	texts := map[string]string{}
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		texts[p] = string(b)
	}
	anchors := func(p string) map[string]bool {
		text, ok := texts[p]
		if !ok {
			b, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			text = string(b)
		}
		return mdAnchors(text)
	}
	reach := map[string][]string{}
	for _, p := range pages {
		for _, l := range mdLinks(texts[p]) {
			path, anchor, _ := strings.Cut(l, "#")
			target := p
			if path != "" {
				target = filepath.Clean(filepath.Join(filepath.Dir(p), path))
				if _, err := os.Stat(target); err != nil {
					t.Errorf("%s: link %q: %v", p, l, err)
					continue
				}
			}
			reach[p] = append(reach[p], target)
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(target, ".md") {
				t.Errorf("%s: link %q: an anchor in a file that is not Markdown", p, l)
			} else if !anchors(target)[anchor] {
				t.Errorf("%s: link %q: %s has no heading #%s", p, l, target, anchor)
			}
		}
	}
	seen := map[string]bool{"README.md": true}
	for queue := []string{"README.md"}; len(queue) > 0; queue = queue[1:] {
		for _, q := range reach[queue[0]] {
			if !seen[q] {
				seen[q] = true
				queue = append(queue, q)
			}
		}
	}
	for _, p := range pages {
		if !seen[p] {
			t.Errorf("%s: no link leads to it from README.md", p)
		}
	}
}

// TestDocsREADMEProgram: the README's program is a Go program.
func TestDocsREADMEProgram(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	progs := 0
	for _, block := range regexp.MustCompile("(?ms)^```go\n(.*?)^```").FindAllStringSubmatch(string(b), -1) {
		if !strings.HasPrefix(block[1], "package main") {
			continue
		}
		progs++
		if _, err := parser.ParseFile(token.NewFileSet(), "README.md", block[1], 0); err != nil {
			t.Errorf("README.md's program: %v", err)
		}
	}
	if progs == 0 {
		t.Error("README.md has no complete program (a go block with package main)")
	}
}
