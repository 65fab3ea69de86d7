/* map.html of `vkft data explore`: one self-contained page (the report's style sheet, inline SVG,
 * a little JavaScript; no network) — the records as points of the 2-D projection coloured by
 * cluster, each with its text as an SVG <title> (the browser's hover) and a tooltip, the legend,
 * the cluster table with check boxes that download the chosen clusters' records as JSON Lines,
 * the silhouette of each k tried, and the near-duplicate groups. Record text goes into the page
 * escaped (rbuf_html for HTML, rbuf_json_string inside <script>): nothing in a record can open
 * an element or end the script. "#hover=I" opens the tooltip of record I and "#select=A,B"
 * ticks clusters A and B, so that a headless browser can check both. */
#include "internal.h"
#include "vkft/explore.h"
#include "vkft/platform.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { W = 900, H = 600, PAD = 28, TEXT_CLIP = 360, EXAMPLE_CLIP = 220 };

/* Tableau's 20 colours: distinct on light and dark backgrounds */
static const char *const palette[20] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                        "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
                                        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

static void cluster_color(int c, char out[32]) {
  if (c < 20)
    snprintf(out, 32, "%s", palette[c]);
  else /* past 20: golden-angle hues */
    snprintf(out, 32, "hsl(%d,60%%,50%%)", (c * 137) % 360);
}

/* the records in cluster c */
static size_t cluster_size(const vkft_explore_map *m, int c) {
  size_t size = 0;
  for (size_t i = 0; i < m->n; i++) size += m->cluster[i] == c;
  return size;
}

/* s cut to at most max bytes on a character boundary, with an ellipsis when cut */
static void html_clipped(vkft_strbuf *b, const char *s, size_t max) {
  size_t n = strlen(s);
  if (n <= max) {
    report_html(b, s);
    return;
  }
  while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) max--;
  char *cut = malloc(max + 1);
  if (!cut) {
    b->failed = 1;
    return;
  }
  memcpy(cut, s, max);
  cut[max] = 0;
  report_html(b, cut);
  vkft_strbuf_puts(b, "\xe2\x80\xa6"); /* … */
  free(cut);
}

static void terms_text(vkft_strbuf *b, const vkft_topic_terms *t, int c, int count) {
  int shown = 0;
  for (int i = 0; t && i < t->top && i < count; i++) {
    const char *w = t->terms[(size_t)c * (size_t)t->top + (size_t)i];
    if (!w) break;
    if (shown++) vkft_strbuf_puts(b, ", ");
    report_html(b, w);
  }
  if (!shown) vkft_strbuf_puts(b, "<span class=\"muted\">(no words)</span>");
}

static void scatter(vkft_strbuf *b, const vkft_explore_map *m) {
  float lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
  for (size_t i = 0; i < m->n; i++)
    for (int a = 0; a < 2; a++) {
      lo[a] = fminf(lo[a], m->xy[2 * i + a]);
      hi[a] = fmaxf(hi[a], m->xy[2 * i + a]);
    }
  double span[2];
  for (int a = 0; a < 2; a++) span[a] = hi[a] > lo[a] ? hi[a] - lo[a] : 1;
  double r = m->n > 5000 ? 2 : m->n > 500 ? 3 : 4.5;
  /* shorter hover texts on large maps: the page stays a few tens of MB at 100k records */
  size_t clip = m->n > 10000 ? TEXT_CLIP / 3 : TEXT_CLIP;
  vkft_strbuf_printf(
      b,
      "<figure class=\"chart\" id=\"map\"><figcaption><span class=\"title\">records by "
      "cluster</span><span class=\"note\">the first two principal components of the "
      "embeddings; hover a point for its record</span></figcaption>\n"
      "<div class=\"plot\"><svg viewBox=\"0 0 %d %d\" role=\"img\" "
      "aria-label=\"records by cluster\"><rect class=\"frame\" x=\"0.5\" y=\"0.5\" "
      "width=\"%d\" height=\"%d\" fill=\"none\"/>"
      "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">PC1</text>"
      "<text x=\"8\" y=\"16\">PC2</text><g class=\"points\">\n",
      W, H, W - 1, H - 1, W - 8, H - 8);
  for (size_t i = 0; i < m->n; i++) {
    char color[32];
    cluster_color(m->cluster[i], color);
    double px = PAD + (m->xy[2 * i] - lo[0]) / span[0] * (W - 2 * PAD);
    double py = H - PAD - (m->xy[2 * i + 1] - lo[1]) / span[1] * (H - 2 * PAD);
    vkft_strbuf_printf(b,
                       "<circle class=\"pt\" data-i=\"%zu\" data-c=\"%d\" cx=\"%.1f\" cy=\"%.1f\" "
                       "r=\"%.1f\" fill=\"%s\"><title>cluster %d \xc2\xb7 ",
                       i, m->cluster[i], px, py, r, color, m->cluster[i]);
    report_html(b, m->where[i]);
    vkft_strbuf_puts(b, "\n");
    html_clipped(b, m->texts[i], clip);
    vkft_strbuf_puts(b, "</title></circle>\n");
  }
  vkft_strbuf_puts(b, "</g></svg><div class=\"tip\" hidden></div></div>\n<ul class=\"legend\" "
                      "id=\"legend\">");
  for (int c = 0; c < m->k; c++) {
    char color[32];
    cluster_color(c, color);
    size_t size = cluster_size(m, c);
    vkft_strbuf_printf(
        b,
        "<li data-cluster=\"%d\"><i class=\"swatch dot\" style=\"background:%s\"></i>"
        "<b>%d</b> (%zu) ",
        c, color, c, size);
    terms_text(b, m->terms, c, 4);
    vkft_strbuf_puts(b, "</li>");
  }
  vkft_strbuf_puts(b, "</ul></figure>\n");
}

static void cluster_table(vkft_strbuf *b, const vkft_explore_map *m) {
  vkft_strbuf_puts(b,
                   "<div class=\"details\"><section class=\"box\"><h2>Clusters</h2>"
                   "<p class=\"muted\">Terms: class-based TF-IDF (BERTopic's c-TF-IDF) of each "
                   "cluster's words. Examples: the records nearest the cluster's centre. Tick "
                   "clusters to download their records.</p>"
                   "<p><button type=\"button\" id=\"download\">download selected (JSONL)</button> "
                   "<span id=\"selcount\">0 records selected</span></p>"
                   "<table id=\"clusters\"><thead><tr><th></th><th>cluster</th><th>size</th>"
                   "<th>top terms</th>");
  for (int f = 0; f < m->n_fields; f++) {
    vkft_strbuf_puts(b, "<th>mean ");
    report_html(b, m->fields[f]);
    vkft_strbuf_puts(b, "</th>");
  }
  vkft_strbuf_puts(b, "<th>examples</th></tr></thead><tbody>\n");
  for (int c = 0; c < m->k; c++) {
    char color[32];
    cluster_color(c, color);
    size_t size = cluster_size(m, c);
    vkft_strbuf_printf(
        b,
        "<tr data-cluster=\"%d\"><td><input type=\"checkbox\" class=\"sel\" "
        "data-cluster=\"%d\" aria-label=\"select cluster %d\"></td><td><i class=\"swatch "
        "dot\" style=\"background:%s\"></i>%d</td><td>%zu</td><td class=\"terms\">",
        c, c, c, color, c, size);
    terms_text(b, m->terms, c, m->terms ? m->terms->top : 0);
    vkft_strbuf_puts(b, "</td>");
    for (int f = 0; f < m->n_fields; f++) {
      double sum = 0;
      size_t count = 0;
      for (size_t i = 0; i < m->n; i++) {
        double v = m->field_values[i * (size_t)m->n_fields + (size_t)f];
        if (m->cluster[i] == c && isfinite(v)) sum += v, count++;
      }
      char text[48];
      report_format_number(text, sizeof text, count ? sum / (double)count : NAN);
      vkft_strbuf_printf(b, "<td>%s</td>", count ? text : "&mdash;");
    }
    vkft_strbuf_puts(b, "<td class=\"examples\"><ol class=\"examples\">");
    for (int e = 0; e < m->n_examples; e++) {
      uint32_t i = m->examples[(size_t)c * (size_t)m->n_examples + (size_t)e];
      if (i == UINT32_MAX) break;
      vkft_strbuf_puts(b, "<li>");
      html_clipped(b, m->texts[i], EXAMPLE_CLIP);
      vkft_strbuf_puts(b, "</li>");
    }
    vkft_strbuf_puts(b, "</ol></td></tr>\n");
  }
  vkft_strbuf_puts(b, "</tbody></table>");
  if (m->silhouette) {
    vkft_strbuf_printf(b,
                       "<p class=\"muted\" id=\"silhouette\">k chosen by the mean silhouette over "
                       "k = %d..%d:",
                       m->k_lo, m->k_hi);
    for (int k = m->k_lo; k <= m->k_hi; k++)
      vkft_strbuf_printf(b, "%s k=%d: %.3f%s", k == m->k ? " <b>" : "", k,
                         m->silhouette[k - m->k_lo], k == m->k ? "</b>" : "");
    vkft_strbuf_puts(b, "</p>");
  }
  vkft_strbuf_puts(b, "</section>\n");
}

static void duplicate_table(vkft_strbuf *b, const vkft_explore_map *m) {
  vkft_strbuf_printf(b,
                     "<section class=\"box\" id=\"duplicates\"><h2>Near-duplicate groups (%zu)</h2>"
                     "<p class=\"muted\">MinHash over character 5-grams, as <code>vkft data "
                     "dedup</code> finds them: each group is a kept record and the records that "
                     "duplicate it.</p>",
                     m->n_dup_groups);
  if (m->n_dup_groups)
    vkft_strbuf_puts(b, "<table><thead><tr><th>group</th><th>records</th>"
                        "</tr></thead><tbody>\n");
  for (size_t g = 0; g < m->n_dup_groups; g++) {
    vkft_strbuf_printf(b, "<tr class=\"dup\"><td>%zu</td><td><ul>", g + 1);
    for (size_t q = m->dup_start[g]; q < m->dup_start[g + 1]; q++) {
      uint32_t i = m->dup_members[q];
      vkft_strbuf_printf(b, "<li>cluster %d \xc2\xb7 ", m->cluster[i]);
      report_html(b, m->where[i]);
      vkft_strbuf_puts(b, ": ");
      html_clipped(b, m->texts[i], EXAMPLE_CLIP);
      vkft_strbuf_puts(b, "</li>");
    }
    vkft_strbuf_puts(b, "</ul></td></tr>\n");
  }
  if (m->n_dup_groups) vkft_strbuf_puts(b, "</tbody></table>");
  vkft_strbuf_puts(b, "</section></div>\n");
}

/* the records for the download: [[cluster, "json line"], ...], safe inside <script> */
static void records_json(vkft_strbuf *b, const vkft_explore_map *m) {
  vkft_strbuf_puts(b, "<script type=\"application/json\" id=\"records\">[");
  for (size_t i = 0; i < m->n; i++) {
    vkft_strbuf_printf(b, "%s[%d,", i ? ",\n" : "", m->cluster[i]);
    report_json_string(b, m->records[i]);
    vkft_strbuf_puts(b, "]");
  }
  vkft_strbuf_puts(b, "]</script>\n");
}

static const char explore_style[] =
    ".legend{list-style:none;padding:0;margin:6px 0 0}"
    ".legend li{margin-right:10px}"
    ".swatch.dot{width:10px;height:10px;border-radius:50%}"
    "circle.pt{stroke:var(--card);stroke-width:.6;opacity:.85}"
    "circle.pt:hover,circle.pt.on{stroke:var(--text);stroke-width:1.5;opacity:1}"
    ".tip{white-space:pre-wrap;max-width:420px}"
    "#clusters th{width:auto}"
    "#duplicates td:first-child{width:4em}#duplicates td:last-child{width:auto}"
    "#clusters td.terms{min-width:160px;max-width:260px}"
    "#clusters td.examples{min-width:320px;width:45%}"
    "ol.examples,td ul{margin:0;padding-left:18px}"
    "ol.examples li,td ul li{margin-bottom:3px}"
    "button{font:inherit;padding:4px 12px;border-radius:6px;border:1px solid var(--line);"
    "background:var(--card);color:var(--text);cursor:pointer}";

static const char explore_script[] =
    "(function(){'use strict';"
    "var recs=JSON.parse(document.getElementById('records').textContent);"
    "var svg=document.querySelector('#map svg'),tip=document.querySelector('#map .tip');"
    "var pts=svg.querySelectorAll('circle.pt'),on=null;"
    "function show(c){if(on)on.classList.remove('on');on=c;c.classList.add('on');"
    "tip.textContent=c.querySelector('title').textContent;tip.hidden=false;"
    "var box=svg.getBoundingClientRect(),w=box.width||1,s=w/svg.viewBox.baseVal.width,"
    "x=c.cx.baseVal.value*s,y=c.cy.baseVal.value*s;"
    "tip.style.left=Math.max(0,Math.min(x+10,w-tip.offsetWidth))+'px';tip.style.top=(y+10)+'px';}"
    "function hide(){tip.hidden=true;if(on)on.classList.remove('on');on=null;}"
    "Array.prototype.forEach.call(pts,function(c){"
    "c.addEventListener('pointerenter',function(){show(c);});"
    "c.addEventListener('pointerleave',hide);});"
    "var boxes=document.querySelectorAll('input.sel');"
    "function chosen(){var want={};Array.prototype.forEach.call(boxes,function(b){"
    "if(b.checked)want[b.getAttribute('data-cluster')]=1;});"
    "return recs.filter(function(r){return want[r[0]];});}"
    "function count(){var n=chosen().length;document.getElementById('selcount').textContent="
    "n+' record'+(n===1?'':'s')+' selected';}"
    "Array.prototype.forEach.call(boxes,function(b){b.addEventListener('change',count);});"
    "document.getElementById('download').addEventListener('click',function(){"
    "var lines=chosen().map(function(r){return r[1]+'\\n';});"
    "var a=document.createElement('a');"
    "a.href=URL.createObjectURL(new Blob(lines,{type:'application/jsonl'}));"
    "a.download='selected.jsonl';document.body.appendChild(a);a.click();"
    "setTimeout(function(){URL.revokeObjectURL(a.href);a.remove();},0);});"
    "var m=/select=([\\d,]+)/.exec(location.hash);"
    "if(m)m[1].split(',').forEach(function(c){var b=document.querySelector("
    "'input.sel[data-cluster=\"'+c+'\"]');if(b)b.checked=true;});"
    "count();"
    "m=/hover=(\\d+)/.exec(location.hash);"
    "if(m&&pts[+m[1]])show(pts[+m[1]]);"
    "document.documentElement.setAttribute('data-js','ok');"
    "})();";

static void cards(vkft_strbuf *b, const vkft_explore_map *m) {
  vkft_strbuf_printf(
      b,
      "<section class=\"cards\"><div class=\"card\"><div class=\"label\">records</div>"
      "<div class=\"value\" id=\"n-records\">%zu</div></div>"
      "<div class=\"card\"><div class=\"label\">clusters</div><div class=\"value\" "
      "id=\"n-clusters\">%d</div><div class=\"sub\">%s</div></div>"
      "<div class=\"card\"><div class=\"label\">near-duplicate groups</div>"
      "<div class=\"value\">%zu</div></div></section>\n",
      m->n, m->k, m->silhouette ? "chosen by silhouette" : "as asked", m->n_dup_groups);
}

int vkft_explore_write_html(const char *path, const vkft_explore_map *m) {
  vkft_strbuf b = {0};
  vkft_strbuf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                       "<title>vkft data explore: ");
  report_html(&b, m->title);
  vkft_strbuf_printf(&b, "</title><style>%s%s</style></head>\n<body><main>\n", report_style,
                     explore_style);
  vkft_strbuf_puts(&b, "<header><div class=\"brand\">vkft data explore</div><h1>");
  report_html(&b, m->title);
  vkft_strbuf_puts(&b, "</h1><span class=\"where\">");
  report_html(&b, m->model);
  vkft_strbuf_puts(&b, "</span></header>\n");
  cards(&b, m);
  scatter(&b, m);
  cluster_table(&b, m);
  duplicate_table(&b, m);
  vkft_strbuf_puts(&b, "<footer>");
  report_html(&b, m->method ? m->method : "");
  vkft_strbuf_puts(&b, "</footer>\n</main>\n");
  records_json(&b, m);
  vkft_strbuf_printf(&b, "<script>%s</script>\n</body></html>\n", explore_script);
  int status = b.failed ? vkft_error_nomem() : vkft_file_write_atomic(path, b.data, b.len);
  vkft_strbuf_free(&b);
  return status;
}
