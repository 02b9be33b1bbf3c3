/**
 * The sample's page, nothing to build: the public feed with a plain EventSource; the private
 * notifications with @nest-sse/client, imported as one ES module file from `/client.js`.
 */
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
  #private-state { padding: .15rem .6rem; border-radius: 1rem; background: #eee; font-weight: 600; }
  #private-state[data-state="open"] { background: #d7f5dd; color: #13622a; }
  #private-state[data-state="stopped"] { background: #f8d7da; color: #842029; }
  #notifications { list-style: none; padding: 0; margin: 0; border: 1px solid #ddd; border-radius: .4rem; min-height: 2rem; max-height: 14rem; overflow: auto; }
  #notifications li { padding: .35rem .6rem; border-bottom: 1px solid #eee; font-family: ui-monospace, monospace; font-size: 13px; }
  #stats { border-collapse: collapse; font-family: ui-monospace, monospace; font-size: 13px; }
  #stats td, #stats th { border: 1px solid #ddd; padding: .25rem .6rem; text-align: left; }
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
<h2>Private notifications</h2>
<p>A stream of your own from <code>/notifications</code>, signed in with <code>Authorization: Bearer &lt;token&gt;</code>
(demo users from <code>SSE_DEMO_USERS</code>; in development <code>alice-token</code> and <code>bob-token</code>;
<code>/?token=alice-token</code> signs in at once).</p>
<form id="signin">
  <label for="user-token">User token</label><input id="user-token" type="password" autocomplete="off" placeholder="alice-token">
  <button id="signin-button" type="submit">Sign in</button>
</form>
<div class="row">
  <span>Private stream: <span id="private-state" data-state="signed-out">signed out</span></span>
  <span id="whoami"></span>
</div>
<ul id="notifications"></ul>
<h2>Connections</h2>
<p>Per node and endpoint, from <code>GET /events/stats</code> (with the broadcast token above), every second.</p>
<table id="stats"><thead><tr><th>node</th><th>endpoint</th><th>connections</th></tr></thead><tbody></tbody></table>
<p id="stats-status"></p>
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
<script type="module">
  import { SseClient } from '/client.js';

  const state = document.getElementById('private-state');
  const list = document.getElementById('notifications');
  const input = document.getElementById('user-token');
  let client = null;

  function setState(text, value) { state.textContent = text; state.dataset.state = value; }

  function signIn(token) {
    if (client) client.close();
    list.textContent = '';
    document.getElementById('whoami').textContent = '';
    setState('connecting', 'connecting');
    // the header makes the client read the stream with fetch: it sees a 401 and stops there
    client = new SseClient('/notifications', { headers: { Authorization: 'Bearer ' + token }, parse: { connection: 'text' } });
    client.on('connection', (text) => { document.getElementById('whoami').textContent = text; });
    client.on('notification', (data) => {
      const li = document.createElement('li');
      li.textContent = data !== null && typeof data === 'object' ? data.text : String(data);
      list.insertBefore(li, list.firstChild);
    });
    client.onStateChange((value) => { if (value !== 'closed') setState(value, value); });
    client.onError((error) => {
      if (error.final) setState(error.message || String(error.status), 'stopped');
    });
  }

  document.getElementById('signin').addEventListener('submit', (e) => {
    e.preventDefault();
    if (input.value) signIn(input.value);
  });

  const fromUrl = new URLSearchParams(location.search).get('token');
  if (fromUrl) {
    // out of the address bar (and the history) once read
    history.replaceState(null, '', location.pathname);
    input.value = fromUrl;
    signIn(fromUrl);
  }

  const statsBody = document.querySelector('#stats tbody');
  const statsStatus = document.getElementById('stats-status');
  async function refreshStats() {
    try {
      const res = await fetch('/events/stats', { headers: { Authorization: 'Bearer ' + document.getElementById('token').value }, cache: 'no-store' });
      const body = await res.json();
      if (!res.ok) { statsStatus.textContent = res.status + ': ' + body.message; return; }
      const rows = [];
      for (const node of body.nodes) {
        for (const [endpoint, count] of Object.entries(node.endpoints)) {
          const tr = document.createElement('tr');
          for (const text of [node.node, endpoint, String(count)]) {
            const td = document.createElement('td');
            td.textContent = text;
            tr.appendChild(td);
          }
          tr.dataset.endpoint = endpoint;
          rows.push(tr);
        }
      }
      statsBody.replaceChildren(...rows);
      statsStatus.textContent = body.connected_clients + ' connections on ' + body.nodes.length + ' node(s), ' + new Date(body.timestamp).toLocaleTimeString();
    } catch (err) {
      statsStatus.textContent = String(err);
    } finally {
      setTimeout(refreshStats, 1000);
    }
  }
  refreshStats();
</script>
</body>
</html>`;
}
