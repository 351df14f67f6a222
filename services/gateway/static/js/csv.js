// CSV files of what a picture draws, made in the page from the API's JSON (RFC 4180: a header
// row, comma-separated, CRLF line ends, fields quoted when they hold a comma, a quote or a line
// break). Numbers are written as JavaScript prints them (the shortest text that reads back as
// the same double), NaN and ±Infinity as proto3 JSON spells them, so a file reads back equal to
// the API's values.

export function csvField(v) {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'NaN';
    if (v === Infinity) return 'Infinity';
    if (v === -Infinity) return '-Infinity';
    return String(v);
  }
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

// `rows`: arrays of values, or a function (i) → row with `count` rows (columnar data, made row by
// row without building the whole table first).
export function toCsv(header, rows, count = rows.length) {
  const lines = [header.map(csvField).join(',')];
  const row = typeof rows === 'function' ? rows : (i) => rows[i];
  for (let i = 0; i < count; i++) lines.push(row(i).map(csvField).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

// File names from ids and labels: letters, digits, '.', '_' and '-' only.
export const fileSafe = (s) => String(s).replace(/[^A-Za-z0-9._-]+/g, '_');

export function downloadCsv(filename, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/**
 * A "CSV" button for one picture.
 * @param {string} testid the button's data-testid
 * @param {() => ({filename: string, header: string[], rows: any[]|function, count?: number}|null)} make
 *   what to write, asked at the click (null: nothing to download yet)
 */
export function csvButton(testid, make, title = 'Download the data of this picture as CSV') {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'csv';
  b.textContent = 'CSV';
  b.title = title;
  b.dataset.testid = testid;
  b.addEventListener('click', () => {
    const what = make();
    if (!what) return;
    downloadCsv(what.filename, toCsv(what.header, what.rows, what.count ?? what.rows.length));
  });
  return b;
}
