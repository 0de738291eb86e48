// A little life on the demo page: the local time, updated every second.
(function () {
  var el = document.getElementById('clock');
  if (!el) return;
  function tick() { el.textContent = 'Your clock says ' + new Date().toLocaleTimeString() + '.'; }
  tick();
  setInterval(tick, 1000);
})();
