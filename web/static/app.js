// Thiqa verification page: uploads the chosen PDF to the verification API
// and shows the report. Every value from the report is written with
// textContent, never as HTML.
"use strict";
(function () {
  var T = {
    "TOTAL-PASSED": ["صالح — اجتاز التحقق بالكامل", "Valid — TOTAL-PASSED"],
    "TOTAL-FAILED": ["غير صالح — فشل التحقق", "Not valid — TOTAL-FAILED"],
    "INDETERMINATE": ["غير محسوم — تعذّر التأكد", "Indeterminate — could not be confirmed"],
    FORMAT_FAILURE: ["بنية المستند غير سليمة أو عُدِّل بعد التوقيع", "document structure is wrong or it was changed after signing"],
    HASH_FAILURE: ["تغيّرت البيانات الموقّعة", "the signed data was changed"],
    SIG_CRYPTO_FAILURE: ["قيمة التوقيع غير صحيحة", "the signature value does not verify"],
    REVOKED: ["الشهادة ملغاة", "the certificate is revoked"],
    REVOKED_NO_POE: ["الشهادة ملغاة ولا دليل على وقت التوقيع", "revoked, and no proof of when it was signed"],
    NO_SIGNING_CERTIFICATE_FOUND: ["شهادة الموقّع غير موجودة أو غير مرتبطة", "signer certificate missing or not bound"],
    NO_CERTIFICATE_CHAIN_FOUND: ["لا سلسلة إلى جهة موثوقة", "no chain to a trusted root"],
    CERTIFICATE_CHAIN_GENERAL_FAILURE: ["خلل في سلسلة الشهادات", "certificate chain failure"],
    CHAIN_CONSTRAINTS_FAILURE: ["مخالفة قيود سلسلة الشهادات", "certificate chain constraints violated"],
    CRYPTO_CONSTRAINTS_FAILURE: ["خوارزمية أو طول مفتاح غير مقبول", "algorithm or key size not accepted"],
    OUT_OF_BOUNDS_NO_POE: ["انتهت صلاحية الشهادة ولا دليل على وجود سابق", "certificate expired and no earlier proof of existence"],
    OUT_OF_BOUNDS_NOT_REVOKED: ["انتهت صلاحية الشهادة", "certificate expired"],
    NOT_YET_VALID: ["الشهادة لم تسرِ بعد", "certificate not yet valid"],
    TRY_LATER: ["معلومات الإلغاء غير متاحة الآن — أعد المحاولة لاحقًا", "revocation information not available — try later"],
    NO_SIGNATURE_FOUND: ["لا يحتوي المستند على توقيع", "the document has no signature"],
    SIGNED_DATA_NOT_FOUND: ["البيانات الموقّعة غير موجودة", "signed data not found"],
    TIMESTAMP_ORDER_FAILURE: ["ترتيب الطوابع الزمنية غير صحيح", "timestamps out of order"],
    signature: ["توقيع", "Signature"],
    "document-timestamp": ["طابع زمني للمستند", "Document timestamp"],
    signer: ["الموقّع", "Signer"],
    tsa: ["جهة الختم الزمني", "Time-stamping authority"],
    civil: ["الرقم المدني", "Civil number"],
    orgid: ["معرّف المؤسسة", "Organisation identifier"],
    org: ["المؤسسة", "Organisation"],
    cert: ["الشهادة", "Certificate"],
    level: ["المستوى", "Level"],
    result: ["النتيجة", "Result"],
    time: ["وقت التوقيع", "Signing time"],
    proven: ["مُثبت بطابع زمني", "proven by a timestamp"],
    claimed: ["مُدّعى (غير مُثبت)", "claimed (not proven)"],
    issuer: ["المُصدِر", "Issuer"],
    qualified: ["مؤهلة", "qualified"],
    qscd: ["مفتاح في جهاز توقيع مؤهل QSCD", "key in a QSCD"],
    esign: ["توقيع إلكتروني", "e-signature"],
    eseal: ["ختم إلكتروني", "e-seal"],
    web: ["موقع ويب", "website"],
    notq: ["غير مؤهلة", "not qualified"],
    qunknown: ["التأهيل غير معروف (لا توجد قائمة ثقة)", "qualified status unknown (no trusted list)"],
    qunvalidated: ["التأهيل غير معروف (لم يكتمل التحقق من الشهادة)", "qualified status unknown (the certificate was not validated)"],
    whole: ["يغطي المستند كاملًا", "covers the whole document"],
    partial: ["عُدِّل المستند بعد هذا التوقيع", "the document was changed after this signature"],
    permitted: ["كل ما أُضيف بعده من الأنواع التي يسمح بها التوقيع (انظر التغييرات أدناه)", "everything added after it is of a kind the signature permits (see the changes below)"],
    checking: ["جارٍ التحقق…", "Verifying…"],
    choose: ["اختر ملف PDF أولًا.", "Choose a PDF file first."],
    toobig: ["الملف أكبر من الحد المسموح.", "The file is larger than the limit."],
    busy: ["طلبات كثيرة من عنوانك؛ أعد المحاولة بعد قليل.", "Too many requests from your address; try again shortly."],
    overloaded: ["الخدمة مشغولة الآن بعمليات تحقق أخرى؛ أعد المحاولة بعد بضع ثوانٍ.", "The service is busy with other verifications; try again in a few seconds."],
    failed: ["تعذّر التحقق: ", "Verification could not run: "],
    sigs: [" توقيع", " signature(s)"],
    bytes: [" بايت", " bytes"]
  };

  function el(tag, cls) { var e = document.createElement(tag); if (cls) { e.className = cls; } return e; }
  // bi returns a fragment with the Arabic and the English text of key (or of the pair given).
  function bi(keyOrPair, suffix) {
    var p = Array.isArray(keyOrPair) ? keyOrPair : (T[keyOrPair] || [keyOrPair, keyOrPair]);
    var f = document.createDocumentFragment();
    var ar = el("span"); ar.lang = "ar"; ar.dir = "rtl"; ar.textContent = p[0] + (suffix ? suffix[0] : "");
    var en = el("span"); en.lang = "en"; en.dir = "ltr"; en.textContent = p[1] + (suffix ? suffix[1] : "");
    f.appendChild(ar); f.appendChild(en);
    return f;
  }
  function ltr(text) { var s = el("span"); s.dir = "ltr"; s.className = "value"; s.textContent = text; return s; }
  function row(dl, key, value) {
    if (value === undefined || value === null || value === "") { return; }
    var dt = el("dt"); dt.appendChild(bi(key));
    var dd = el("dd");
    if (typeof value === "string") { dd.appendChild(ltr(value)); } else { dd.appendChild(value); }
    dl.appendChild(dt); dl.appendChild(dd);
  }
  // dnName is the common name of an RFC 4514 distinguished name (as the
  // report's issuer is), unescaped; the name itself when it has none. A
  // reader knows the CA by its name, not by "…,2.5.4.97=#130d…". The DN
  // is split at its unescaped commas and pluses only: an escaped ",CN="
  // inside another attribute's value (anyone can make a CA named so) is
  // not a common name.
  function dnName(dn) {
    var parts = (dn || "").match(/(?:\\.|[^,+\\])+/g) || [];
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].slice(0, 3) === "CN=") { return parts[i].slice(3).replace(/\\(.)/g, "$1"); }
    }
    return dn || "";
  }
  function verdictNode(ind, sub) {
    var f = document.createDocumentFragment();
    f.appendChild(bi(ind || "INDETERMINATE"));
    if (sub) {
      var s = el("small"); s.appendChild(bi(sub, [" (" + sub + ")", " (" + sub + ")"])); f.appendChild(s);
    }
    return f;
  }
  // arDigits writes a number in Arabic-Indic digits, as the portal's
  // Arabic pages write every count (web/portal formatNumber).
  function arDigits(n) { return String(n).replace(/[0-9]/g, function (d) { return String.fromCharCode(0x0660 + Number(d)); }); }
  function fmtTime(iso) { return iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC") : ""; }
  function notes(list, items, cls) {
    (items || []).forEach(function (t) { var li = el("li", cls); li.dir = "ltr"; li.textContent = t; list.appendChild(li); });
  }

  function badges(s) {
    var f = el("span");
    function add(k) { var b = el("span", "badge"); b.appendChild(bi(k, [" ", ""])); f.appendChild(b); }
    // qualified is true only when a trusted list says so (ETSI TS 119 615).
    var q = s.qualification || {};
    add(s.qualified ? "qualified" : (q.status === "unknown" ? (q.reason === "no trusted list" ? "qunknown" : "qunvalidated") : "notq"));
    if (s.qscd) { add("qscd"); }
    (s.qcTypes || []).forEach(function (t) { if (T[t]) { add(t); } });
    return f;
  }

  function renderSignature(sig, i) {
    var card = el("article", "sig");
    card.dataset.indication = "";
    var h = el("h2"); h.appendChild(bi(sig.kind === "document-timestamp" ? "document-timestamp" : "signature", [" " + arDigits(i + 1), " " + (i + 1)]));
    var fieldName = el("small"); fieldName.dir = "ltr"; fieldName.textContent = sig.field || "";
    h.appendChild(fieldName);
    card.appendChild(h);
    var state = el("div", "state sig-verdict"); state.dataset.indication = sig.indication || "";
    state.appendChild(verdictNode(sig.indication, sig.subIndication));
    card.appendChild(state);
    var dl = el("dl"); var s = sig.signer || {};
    row(dl, sig.kind === "document-timestamp" ? "tsa" : "signer", s.commonName || s.name || "");
    row(dl, "civil", s.civilNumber || "");
    row(dl, "orgid", s.organizationIdentifier || "");
    row(dl, "org", s.organization || "");
    if (sig.signer) { row(dl, "cert", badges(s)); }
    row(dl, "level", sig.level || "—");
    if (sig.provenSigningTime) {
      var pt = el("span"); pt.appendChild(ltr(fmtTime(sig.provenSigningTime))); var pl = el("small"); pl.appendChild(bi("proven")); pt.appendChild(pl); row(dl, "time", pt);
    } else if (sig.claimedSigningTime) {
      var ct = el("span"); ct.appendChild(ltr(fmtTime(sig.claimedSigningTime))); var cl = el("small"); cl.appendChild(bi("claimed")); ct.appendChild(cl); row(dl, "time", ct);
    }
    row(dl, "issuer", dnName(s.issuer));
    card.appendChild(dl);
    var cov = el("p", "summary");
    cov.appendChild(bi(sig.coversWholeDocument ? "whole" : (sig.indication === "TOTAL-PASSED" ? "permitted" : "partial"))); card.appendChild(cov);
    var ul = el("ul", "notes"); notes(ul, sig.errors, "err"); notes(ul, sig.modifications); notes(ul, sig.warnings); card.appendChild(ul);
    return card;
  }

  function render(rep) {
    var v = document.getElementById("verdict");
    v.textContent = ""; v.appendChild(verdictNode(rep.indication, rep.subIndication));
    v.dataset.indication = rep.indication || "";
    var sum = document.getElementById("summary"); sum.textContent = "";
    var n = (rep.signatures || []).length;
    sum.appendChild(bi([arDigits(n), String(n)], [T.sigs[0] + " · " + arDigits(rep.documentSize) + T.bytes[0], T.sigs[1] + " · " + rep.documentSize + T.bytes[1] + " · " + fmtTime(rep.validationTime)]));
    var dn = document.getElementById("docnotes"); dn.textContent = ""; notes(dn, rep.errors, "err"); notes(dn, rep.warnings);
    var box = document.getElementById("signatures"); box.textContent = "";
    (rep.signatures || []).forEach(function (s, i) { box.appendChild(renderSignature(s, i)); });
    document.getElementById("result").hidden = false;
  }

  function status(key, extra, isError) {
    var st = document.getElementById("status"); st.textContent = "";
    st.className = isError ? "error" : "";
    if (key) { st.appendChild(bi(key, extra ? [extra, extra] : null)); }
  }

  function setLang(l) {
    var root = document.documentElement;
    root.dataset.show = l;
    root.lang = l === "en" ? "en" : "ar";
    root.dir = l === "en" ? "ltr" : "rtl";
    document.querySelectorAll(".langs button").forEach(function (b) { b.setAttribute("aria-pressed", String(b.dataset.lang === l)); });
    try { localStorage.setItem("thiqa-lang", l); } catch (e) { /* private mode */ }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("form");
    var saved = null;
    try { saved = localStorage.getItem("thiqa-lang"); } catch (e) { /* private mode */ }
    setLang(saved === "ar" || saved === "en" ? saved : "both");
    document.querySelectorAll(".langs button").forEach(function (b) { b.addEventListener("click", function () { setLang(b.dataset.lang); }); });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var file = document.getElementById("file").files[0];
      if (!file) { status("choose", null, true); return; }
      var max = Number(form.dataset.max || 0);
      if (max > 0 && file.size > max) { status("toobig", null, true); return; }
      var btn = document.getElementById("go"); btn.disabled = true;
      document.getElementById("result").hidden = true;
      status("checking");
      // The same multipart upload as the form without script (and curl -F):
      // the server reads the first file part.
      var data = new FormData(); data.append("file", file);
      fetch(form.dataset.api, { method: "POST", body: data })
        .then(function (resp) {
          return resp.text().then(function (text) {
            var body = null; try { body = JSON.parse(text); } catch (e) { body = null; }
            if (resp.status === 429) { status("busy", null, true); return; }
            // 503: too many verifications in progress (from this address or
            // overall); Retry-After says when to try again.
            if (resp.status === 503) { status("overloaded", null, true); return; }
            if (!resp.ok || !body || !body.indication) {
              status("failed", (body && (body.detail || body.title)) || ("HTTP " + resp.status), true); return;
            }
            status(null); render(body);
          });
        })
        .catch(function (err) { status("failed", String(err), true); })
        .then(function () { btn.disabled = false; });
    });
  });
})();
