// Progressive enhancement for the search page. Without this file everything still works: the form posts the
// picture (the server redirects to a GET search) and text searches post-then-redirect too.
(function () {
  "use strict";
  var form = document.getElementById("search-form");
  if (!form) return;
  var fileInput = document.getElementById("image-input");
  var preview = document.getElementById("picture-preview");

  function setPicture(file) {
    if (!file || !/^image\//.test(file.type)) return false;
    var transfer = new DataTransfer();
    transfer.items.add(file);
    fileInput.files = transfer.files;
    if (preview) {
      preview.src = URL.createObjectURL(file);
      preview.alt = "Picture to search with: " + (file.name || "pasted image");
      preview.hidden = false;
    }
    return true;
  }

  function submitWithPicture() {
    form.method = "post";
    form.submit();
  }

  // Text-only searches go straight to a GET (bookmarkable, no redirect round trip).
  form.addEventListener("submit", function (event) {
    if (fileInput.files && fileInput.files.length) return;
    event.preventDefault();
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (key === "csrfmiddlewaretoken" || key === "image" || value === "") return;
      params.append(key, value);
    });
    window.location.assign(form.action + (params.toString() ? "?" + params.toString() : ""));
  });

  fileInput.addEventListener("change", function () {
    if (fileInput.files.length && setPicture(fileInput.files[0])) submitWithPicture();
  });

  var depth = 0;
  document.addEventListener("dragenter", function (event) {
    if (event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") >= 0) {
      depth += 1;
      document.body.classList.add("dragging");
    }
  });
  document.addEventListener("dragleave", function () {
    depth = Math.max(0, depth - 1);
    if (!depth) document.body.classList.remove("dragging");
  });
  document.addEventListener("dragover", function (event) { event.preventDefault(); });
  document.addEventListener("drop", function (event) {
    event.preventDefault();
    depth = 0;
    document.body.classList.remove("dragging");
    var files = event.dataTransfer && event.dataTransfer.files;
    if (files && files.length && setPicture(files[0])) submitWithPicture();
  });

  document.addEventListener("paste", function (event) {
    var items = (event.clipboardData && event.clipboardData.items) || [];
    for (var i = 0; i < items.length; i += 1) {
      if (items[i].kind === "file" && /^image\//.test(items[i].type)) {
        event.preventDefault();
        if (setPicture(items[i].getAsFile())) submitWithPicture();
        return;
      }
    }
  });
})();
