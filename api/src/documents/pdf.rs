//! A small A4 page writer over `pdf-writer`: lines of text in Helvetica
//! (regular and bold), left- or right-aligned, a rule, a new page when the
//! page is full. Text is encoded in WinAnsi (Windows-1252), the encoding
//! of the PDF standard fonts, so French reads back as written (é, °, €);
//! a character outside it prints as "?".

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

/// A4 in points.
const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
pub const MARGIN: f32 = 50.0;
/// The right edge of the text.
pub const RIGHT: f32 = WIDTH - MARGIN;

const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// Helvetica's advance widths (per 1000 em) of the characters amounts are
/// written with, to align them on the right; others count as an "n".
fn advance(c: char, bold: bool) -> f32 {
    match c {
        '0'..='9' | '€' => 556.0,
        ',' | '.' | ' ' | '\u{a0}' => 278.0,
        '-' => 333.0,
        _ if bold => 611.0,
        _ => 556.0,
    }
}

pub struct Document {
    pages: Vec<Content>,
    /// Where the next line goes, from the bottom of the page.
    y: f32,
}

impl Default for Document {
    fn default() -> Self {
        Document::new()
    }
}

impl Document {
    pub fn new() -> Document {
        Document {
            pages: vec![Content::new()],
            y: HEIGHT - MARGIN,
        }
    }

    fn page(&mut self) -> &mut Content {
        self.pages.last_mut().expect("a document has a page")
    }

    /// Moves down `by` points, onto a new page if this one is full.
    pub fn down(&mut self, by: f32) {
        self.y -= by;
        if self.y < MARGIN {
            self.pages.push(Content::new());
            self.y = HEIGHT - MARGIN - by;
        }
    }

    /// Writes `text` at `x` on the current line.
    pub fn text(&mut self, x: f32, size: f32, bold: bool, text: &str) {
        let y = self.y;
        let (encoded, _, _) = encoding_rs::WINDOWS_1252.encode(text);
        let page = self.page();
        page.begin_text();
        page.set_font(if bold { BOLD } else { REGULAR }, size);
        page.next_line(x, y);
        page.show(Str(&encoded));
        page.end_text();
    }

    /// Writes `text` ending at `right` on the current line.
    pub fn text_right(&mut self, right: f32, size: f32, bold: bool, text: &str) {
        let width: f32 = text.chars().map(|c| advance(c, bold)).sum::<f32>() * size / 1000.0;
        self.text(right - width, size, bold, text);
    }

    /// A new line of `size` with `text` at the margin.
    pub fn line(&mut self, size: f32, bold: bool, text: &str) {
        self.down(size * 1.5);
        self.text(MARGIN, size, bold, text);
    }

    /// A horizontal rule across the page, under the current line.
    pub fn rule(&mut self) {
        self.down(6.0);
        let y = self.y;
        let page = self.page();
        page.set_line_width(0.5);
        page.move_to(MARGIN, y);
        page.line_to(RIGHT, y);
        page.stroke();
    }

    /// The PDF's bytes.
    pub fn finish(self, title: &str) -> Vec<u8> {
        let mut pdf = Pdf::new();
        let catalog = Ref::new(1);
        let tree = Ref::new(2);
        let regular = Ref::new(3);
        let bold = Ref::new(4);
        let info = Ref::new(5);
        let first_page = 6;
        let pages: Vec<(Ref, Ref)> = (0..self.pages.len() as i32)
            .map(|n| (Ref::new(first_page + 2 * n), Ref::new(first_page + 2 * n + 1)))
            .collect();
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree)
            .kids(pages.iter().map(|(page, _)| *page))
            .count(pages.len() as i32);
        pdf.document_info(info)
            .title(pdf_writer::TextStr(title))
            .producer(pdf_writer::TextStr("espace-famille"));
        for ((page_id, content_id), content) in pages.iter().zip(self.pages) {
            let mut page = pdf.page(*page_id);
            page.media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT));
            page.parent(tree);
            page.contents(*content_id);
            page.resources().fonts().pair(REGULAR, regular).pair(BOLD, bold);
            page.finish();
            pdf.stream(*content_id, &content.finish());
        }
        pdf.type1_font(regular)
            .base_font(Name(b"Helvetica"))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
        pdf.type1_font(bold)
            .base_font(Name(b"Helvetica-Bold"))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
        pdf.finish()
    }
}
