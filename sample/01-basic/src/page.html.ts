/** The sample's page. Plain HTML and EventSource: nothing to build. */
export function renderPage(devToken: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nest-sse sample</title>
<link rel="icon" href="data:,">
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 52rem; padding: 0 1rem; color: #1d2330; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; }
  .row { display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; margin: .8rem 0; }
  #state { padding: .15rem .6rem; border-radius: 1rem; background: #eee; font-weight: 600; }
  #state[data-state="open"] { background: #d7f5dd; color: #13622a; }
  #state[data-state="connecting"] { background: #fff3cd; color: #7a5b00; }
  #state[data-state="closed"] { background: #f8d7da; color: #842029; }
  #events { list-style: none; padding: 0; margin: 0; border: 1px solid #ddd; border-radius: .4rem; max-height: 22rem; overflow: auto; }
  #events li { padding: .35rem .6rem; border-bottom: 1px solid #eee; font-family: ui-monospace, monospace; font-size: 13px; }
  #events li .name { font-weight: 700; margin-right: .5rem; }
  form { border: 1px solid #ddd; border-radius: .4rem; padding: .8rem; display: grid; gap: .5rem; grid-template-columns: 8rem 1fr; }
  form button { grid-column: 2; justify-self: start; }
  #result { font-family: ui-monospace, monospace; font-size: 13px; }
</style>
</head>
<body>
<h1>nest-sse sample</h1>
<p>Live events from <code>/channels</code>, filtered by channel. News arrives on its own every few seconds.</p>
<div class="row">
  <label>Channel
    <select id="channel">
      <option value="global">global</option>
      <option value="news" selected>news</option>
      <option value="sports">sports</option>
    </select>
  </label>
  <span>Connection: <span id="state" data-state="connecting">connecting</span></span>
  <span id="count">0 events</span>
</div>
<ul id="events"></ul>
<h2>Broadcast</h2>
<form id="broadcast">
  <label for="message">Message</label><input id="message" value="Hello from the page" required>
  <label for="event-type">Event</label><input id="event-type" value="update">
  <label for="target">To channel</label>
  <select id="target"><option>news</option><option>sports</option><option>global</option></select>
  <label for="token">Token</label><input id="token" type="password" value="${devToken}" placeholder="SSE_BROADCAST_TOKEN">
  <button id="send" type="submit">Send</button>
  <span></span><span id="result"></span>
</form>
<script>
(function () {
  var source = null;
  var count = 0;
  var list = document.getElementById('events');
  var state = document.getElementById('state');
  var channel = document.getElementById('channel');

  function setState(value) { state.textContent = value; state.dataset.state = value; }

  function show(name, data) {
    var li = document.createElement('li');
    var strong = document.createElement('span');
    strong.className = 'name';
    strong.textContent = name;
    li.appendChild(strong);
    li.appendChild(document.createTextNode(data));
    li.dataset.event = name;
    list.insertBefore(li, list.firstChild);
    count++;
    document.getElementById('count').textContent = count + ' events';
  }

  function connect() {
    if (source) source.close();
    setState('connecting');
    source = new EventSource('/channels?channel=' + encodeURIComponent(channel.value));
    source.onopen = function () { setState('open'); };
    source.onerror = function () { setState(source.readyState === EventSource.CLOSED ? 'closed' : 'connecting'); };
    ['connection', 'update', 'message', 'sse.reset'].forEach(function (name) {
      source.addEventListener(name, function (e) { show(name, e.data); });
    });
  }

  channel.addEventListener('change', function () {
    list.textContent = '';
    count = 0;
    document.getElementById('count').textContent = '0 events';
    connect();
  });

  document.getElementById('broadcast').addEventListener('submit', function (e) {
    e.preventDefault();
    var result = document.getElementById('result');
    fetch('/channels/broadcast', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + document.getElementById('token').value },
      body: JSON.stringify({
        message: document.getElementById('message').value,
        event_type: document.getElementById('event-type').value || 'message',
        filter: { channel: document.getElementById('target').value }
      })
    }).then(function (res) {
      return res.json().then(function (body) {
        result.textContent = res.ok ? 'sent to ' + body.reached_on_this_node + ' of ' + body.endpoint_clients : res.status + ': ' + body.message;
      });
    }).catch(function (err) { result.textContent = String(err); });
  });

  connect();
})();
</script>
</body>
</html>`;
}
