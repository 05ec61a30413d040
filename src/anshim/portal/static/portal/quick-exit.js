// Quick exit: leave for a neutral site at once and replace this page in the history, so the
// Back button does not bring the portal back. Every page has the link (a plain link without
// JavaScript); pressing Esc twice quickly does the same.
(function () {
  'use strict';
  var NEUTRAL = 'https://www.naver.com/';
  var lastEscape = 0;

  function leave(event) {
    var link = document.querySelector('[data-quick-exit]');
    var target = (link && link.href) || NEUTRAL;
    if (event) event.preventDefault();
    // Hide the page first: the next site may take a moment to load.
    document.documentElement.style.visibility = 'hidden';
    window.location.replace(target);
  }

  document.addEventListener('click', function (event) {
    var link = event.target.closest && event.target.closest('[data-quick-exit]');
    if (link) leave(event);
  });

  document.addEventListener('keydown', function (event) {
    if (event.key !== 'Escape') return;
    var now = Date.now();
    if (now - lastEscape < 1000) leave(event);
    lastEscape = now;
  });
})();
