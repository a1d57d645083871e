//! Elastic tabstops as Go's `text/tabwriter` lays them out (the docker CLI's
//! tables are tab-separated template output run through it), restricted to what
//! the CLI uses: left alignment, space padding, no escapes or HTML filtering.
//!
//! Go aligns a column only across a *block* of consecutive lines that all have
//! that column; a line with fewer cells ends the block. The recursion below is a
//! port of `Writer.format` so that widths match docker's output byte for byte.

struct Cell<'a> {
    text: &'a str,
    width: usize,
}

/// Aligns tab-separated `text` into columns at least `minwidth` wide, each cell
/// padded with `padding` spaces.
pub fn align(text: &str, minwidth: usize, padding: usize) -> String {
    let segments: Vec<&str> = text.split('\n').collect();
    let last = segments.len() - 1;
    let lines: Vec<Vec<Cell<'_>>> = segments
        .iter()
        .enumerate()
        .map(|(i, seg)| {
            // The text after the final newline only forms a cell when non-empty
            // (Go terminates the pending cell at Flush only if it has content).
            if i == last && seg.is_empty() {
                return Vec::new();
            }
            seg.split('\t')
                .map(|text| Cell {
                    text,
                    width: display_width(text),
                })
                .collect()
        })
        .collect();
    let mut w = Layout {
        lines: &lines,
        minwidth,
        padding,
        widths: Vec::new(),
        out: String::with_capacity(text.len() * 2),
    };
    w.format(0, lines.len());
    w.out
}

/// Number of terminal columns `s` takes: one per character, as go-runewidth
/// reports for the (non East-Asian) text the CLI prints.
pub fn display_width(s: &str) -> usize {
    s.chars().count()
}

struct Layout<'a, 'b> {
    lines: &'a [Vec<Cell<'b>>],
    minwidth: usize,
    padding: usize,
    widths: Vec<usize>,
    out: String,
}

impl Layout<'_, '_> {
    fn format(&mut self, mut line0: usize, line1: usize) {
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            // A new block starts: print the lines above it with the widths so far.
            self.write_lines(line0, this);
            line0 = this;

            let mut width = self.minwidth;
            while this < line1 {
                let line = &self.lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                width = width.max(line[column].width + self.padding);
                this += 1;
            }
            self.widths.push(width);
            self.format(line0, this);
            self.widths.pop();
            line0 = this;
        }
        self.write_lines(line0, line1);
    }

    fn write_lines(&mut self, line0: usize, line1: usize) {
        for i in line0..line1 {
            for (j, cell) in self.lines[i].iter().enumerate() {
                self.out.push_str(cell.text);
                if let Some(&w) = self.widths.get(j) {
                    let pad = w.saturating_sub(cell.width);
                    self.out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            if i + 1 < self.lines.len() {
                self.out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_ps_header() {
        let text = "CONTAINER ID\tIMAGE\tCOMMAND\tNAMES\n8be5fa009a45\tbusybox\t\"sleep 1000\"\tfunny_galois\n";
        let want = "CONTAINER ID   IMAGE     COMMAND        NAMES\n\
                    8be5fa009a45   busybox   \"sleep 1000\"   funny_galois\n";
        assert_eq!(align(text, 10, 3), want);
    }

    #[test]
    fn empty_cells_and_trailing_column() {
        let text = "A\tB\tC\nx\t\tlast\n";
        assert_eq!(
            align(text, 10, 3),
            "A         B         C\nx                   last\n"
        );
    }

    #[test]
    fn line_without_tabs_breaks_block() {
        let text = "aaaa\tb\nno tabs here\nc\td\n";
        assert_eq!(align(text, 1, 1), "aaaa b\nno tabs here\nc d\n");
    }

    #[test]
    fn unterminated_last_line() {
        assert_eq!(align("a\tb\nlonger\tc", 1, 1), "a      b\nlonger c");
        assert_eq!(align("", 10, 3), "");
    }

    #[test]
    fn version_style() {
        let text = " Version:\t1.0\n API version:\t1.41\n";
        assert_eq!(
            align(text, 20, 1),
            " Version:           1.0\n API version:       1.41\n"
        );
    }

    #[test]
    fn unicode_width_counts_chars() {
        let text = "ab…\tx\nabcd\ty\n";
        assert_eq!(align(text, 1, 1), "ab…  x\nabcd y\n");
    }
}
