// The class editor's live checks. Every check runs on the server, with the code a commit
// runs: this only posts the form as it is typed and shows the answers beside the fields.
"use strict";
(function () {
  var form = document.querySelector("form.class-editor");
  if (!form) { return; }
  var verdicts = {example: document.getElementById("example-result"),
                  files: document.getElementById("files-result")};
  var timer = null;
  var asked = 0;

  function show(answer) {
    form.querySelectorAll("[data-error-for]").forEach(function (node) {
      var message = answer.errors[node.dataset.errorFor] || "";
      node.textContent = message;
      node.hidden = !message;
      var input = document.getElementById(node.dataset.errorFor);
      if (input) {
        if (message) { input.setAttribute("aria-invalid", "true"); }
        else { input.removeAttribute("aria-invalid"); }
      }
    });
    Object.keys(verdicts).forEach(function (key) { verdict(verdicts[key], answer[key]); });
  }

  function verdict(node, result) {
    node.hidden = !result;
    if (!result) { return; }
    node.className = "example-result " + (result.ok ? "ok" : "bad");
    node.querySelector(".message").textContent = result.message;
    var list = node.querySelector(".problems");
    list.replaceChildren();
    result.problems.forEach(function (problem) {
      var item = document.createElement("li");
      item.textContent = problem;
      list.appendChild(item);
    });
  }

  function check() {
    var mine = ++asked;
    fetch(form.dataset.check, {
      method: "POST", credentials: "same-origin",
      headers: {"Accept": "application/json"},
      body: new URLSearchParams(new FormData(form))
    }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    }).then(function (answer) {
      if (mine === asked) { show(answer); }  // an older answer must not hide a newer one
    }).catch(function () {
      if (mine !== asked) { return; }
      verdict(verdicts.example, {ok: false, problems: [],
                                 message: "cannot check now: press Check to ask the server"});
    });
  }

  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 250);
  });
})();
