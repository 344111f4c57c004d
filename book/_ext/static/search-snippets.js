// Search result snippets without raw TeX (reader_pages.py).
(function () {
  if (typeof Search === "undefined" || !Search.htmlToText) return;
  const SYMBOLS = {
    partial: "∂", odot: "⊙", sigma: "σ", phi: "φ", rho: "ρ", tau: "τ", theta: "θ", gamma: "γ",
    lambda: "λ", delta: "δ", Gamma: "Γ", sum: "Σ", prod: "Π", cdot: "·", cdots: "…",
    dots: "…", ldots: "…", le: "≤", leq: "≤", ge: "≥", geq: "≥", approx: "≈", to: "→",
    rightarrow: "→", leftarrow: "←", times: "×", infty: "∞", top: "ᵀ", pm: "±", lVert: "‖",
    rVert: "‖", Vert: "‖", in: "∈", ne: "≠", neq: "≠",
  };
  function plain(tex) {
    return tex
      .replace(/^\\\(|\\\)$/g, "")
      .replace(/\\([A-Za-z]+)/g, (m, name) => (name in SYMBOLS ? SYMBOLS[name] : ""))
      .replace(/\\[,;:!| ]/g, " ")
      .replace(/[{}]/g, "")
      .replace(/\s+/g, " ")
      .trim();
  }
  const htmlToText = Search.htmlToText;
  Search.htmlToText = function (htmlString, anchor) {
    const doc = new DOMParser().parseFromString(htmlString, "text/html");
    doc.querySelectorAll("div.math").forEach((el) => el.remove());
    doc.querySelectorAll("span.math").forEach((el) => el.replaceWith(plain(el.textContent)));
    return htmlToText(doc.documentElement.outerHTML, anchor);
  };
})();
