/*
 * csm dashboard — i18n.js: every text the dashboard shows, in Chinese (first) and English.
 * Entries that take values are functions. Components read them through `t` (the table of the
 * language in use).
 */
(function () {
  'use strict';
  const csm = (window.csm = window.csm || {});

  csm.I18N = {
    zh: {
      htmlLang: 'zh-CN', other: 'English', otherLang: 'en',
      appTitle: '充电桩监控', appTitleShort: '充电桩监控',
      status: { free: '空闲', occupied: '充电中', fault: '故障', offline: '离线', reserved: '已预约', unknown: '未知' },
      forDur: (d) => d, justNow: '· 刚刚',
      dur: (d, h, m) => (d ? `${d} 天 ${h} 小时` : h ? `${h} 小时 ${m} 分钟` : `${m} 分钟`),
      ago: (d, h, m) => (d ? `${d} 天前` : h ? `${h} 小时前` : m ? `${m} 分钟前` : '刚刚'),
      conn: { live: '实时', polling: '轮询', offline: '离线' },
      connTitle: { live: '实时推送已连接', polling: '实时推送不可用，每 10 秒轮询一次', offline: '无法连接服务器' },
      stations: '站点', searchLabel: '搜索站点', searchPlaceholder: '搜索名称、编号或地址',
      favOnly: '只看收藏', favLabel: (name) => `收藏 ${name}`,
      loading: '加载中…', retry: '重试', listFailed: '无法加载站点列表。',
      noMatch: '没有匹配的站点。', noStations: '还没有站点。',
      updated: (when) => `更新于 ${when}`, updatedAt: (clock, rel) => `更新于 ${clock}（${rel}）`, never: '从未更新',
      stale: '数据过期', unreachable: '无法连接', disabled: '已停用',
      staleBanner: '数据可能已过期：最近一次刷新未成功或太久没有更新。',
      unreachableBanner: '无法连接该站点：', lastChecked: (when) => `（最后检查 ${when}）`,
      total: (n) => `共 ${n} 个`, back: '站点列表', pickStation: '请从列表中选择一个站点。',
      notFound: (id) => `找不到站点 ${id}。`, loadFailed: '无法加载站点数据。',
      port: '端口',
      voltage: '电压', current: '电流', power: '功率', energy: '电量', endsAt: '预计结束',
      noPorts: '该站点没有端口数据。',
      refresh: '刷新', refreshAria: (name) => `刷新 ${name}`, refreshing: '刷新中…',
      cooldown: (s) => `${s} 秒后可刷新`,
      refreshFailed: (e) => `刷新失败：${e}`, stillUnreachable: '刷新失败：站点仍无法连接。', refreshDone: '已刷新', tooSoon: '刷新太频繁，请稍候。',
      networkError: '网络错误', portChange: (n, a, b) => `端口 ${n}：${a} → ${b}`,
      apiDocs: 'API 文档',
      showing: (n, total) => `显示 ${n} / ${total} 个站点,搜索可缩小范围。`, showMore: '显示更多',
    },
    en: {
      htmlLang: 'en', other: '中文', otherLang: 'zh-CN',
      appTitle: 'Charging Station Monitor', appTitleShort: 'Charging Monitor',
      status: { free: 'Free', occupied: 'Charging', fault: 'Fault', offline: 'Offline', reserved: 'Reserved', unknown: 'Unknown' },
      forDur: (d) => `for ${d}`, justNow: '· just now',
      dur: (d, h, m) => (d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : `${m} min`),
      ago: (d, h, m) => (d ? `${d} d ago` : h ? `${h} h ago` : m ? `${m} min ago` : 'just now'),
      conn: { live: 'Live', polling: 'Polling', offline: 'Offline' },
      connTitle: { live: 'Live updates connected', polling: 'Live updates unavailable, polling every 10 s', offline: 'Cannot reach the server' },
      stations: 'Stations', searchLabel: 'Search stations', searchPlaceholder: 'Name, ID or address',
      favOnly: 'Favourites only', favLabel: (name) => `Favourite ${name}`,
      loading: 'Loading…', retry: 'Retry', listFailed: 'Could not load the station list.',
      noMatch: 'No matching stations.', noStations: 'No stations yet.',
      updated: (when) => `Updated ${when}`, updatedAt: (clock, rel) => `Updated ${clock} (${rel})`, never: 'Never updated',
      stale: 'Stale', unreachable: 'Unreachable', disabled: 'Disabled',
      staleBanner: 'Data may be out of date: the last refresh failed or has not happened for a while.',
      unreachableBanner: 'Station unreachable: ', lastChecked: (when) => ` (last checked ${when})`,
      total: (n) => `${n} total`, back: 'Stations', pickStation: 'Pick a station from the list.',
      notFound: (id) => `Station ${id} not found.`, loadFailed: 'Could not load the station.',
      port: 'Port',
      voltage: 'Voltage', current: 'Current', power: 'Power', energy: 'Energy', endsAt: 'Ends',
      noPorts: 'This station has no port data.',
      refresh: 'Refresh', refreshAria: (name) => `Refresh ${name}`, refreshing: 'Refreshing…',
      cooldown: (s) => `Refresh in ${s} s`,
      refreshFailed: (e) => `Refresh failed: ${e}`, stillUnreachable: 'Refresh failed: the station is still unreachable.', refreshDone: 'Refreshed', tooSoon: 'Too many refreshes, please wait.',
      networkError: 'network error', portChange: (n, a, b) => `Port ${n}: ${a} → ${b}`,
      apiDocs: 'API docs',
      showing: (n, total) => `Showing ${n} of ${total} stations; search to narrow the list.`, showMore: 'Show more',
    },
  };
})();
