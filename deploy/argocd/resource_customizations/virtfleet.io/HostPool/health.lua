-- Argo CD health of a virtfleet.io HostPool, from the conditions its controller writes
-- (docs/controllers.md). Uses no string or os library, so it runs from argocd-cm as it is.
--   Degraded:    Stalled=True; no host ready, or some hosts not ready (Degraded=True), except
--                hosts the controller is still connecting to; declared hypervisors that differ
--                from what the hosts run.
--   Progressing: no status yet, a generation not yet observed, Reconciling=True, hosts still
--                connecting, a host in maintenance being drained, removed hosts that still hold VMs.
--   Healthy:     Ready=True and none of the above.
local function condition(conditionType)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function said(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

if obj.status == nil then
  return { status = "Progressing", message = "Waiting for the controller to report status" }
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  return { status = "Progressing", message = "Waiting for the controller to observe generation " .. tostring(generation) }
end
local stalled = condition("Stalled")
if isTrue(stalled) then
  return { status = "Degraded", message = said(stalled, "Stalled") }
end

-- Hosts not ready only because the controller is still connecting to them are in progress.
local connecting = false
local failing = false
if obj.status.hosts ~= nil then
  for _, host in ipairs(obj.status.hosts) do
    if host.ready ~= true then
      if host.reason == "Connecting" then
        connecting = true
      else
        failing = true
      end
    end
  end
end

local ready = condition("Ready")
local degraded = condition("Degraded")
local mismatch = condition("HypervisorMismatch")
if isTrue(mismatch) then
  return { status = "Degraded", message = said(mismatch, "HypervisorMismatch") }
end
if failing and ready ~= nil and ready.status ~= "True" then
  return { status = "Degraded", message = said(ready, "No host is ready") }
end
if failing and isTrue(degraded) then
  return { status = "Degraded", message = said(degraded, "Some hosts are not ready") }
end
if connecting then
  return { status = "Progressing", message = said(degraded, "Connecting to hosts") }
end

local reconciling = condition("Reconciling")
if isTrue(reconciling) then
  return { status = "Progressing", message = said(reconciling, "Reconciling") }
end
local maintenance = condition("Maintenance")
if isTrue(maintenance) and maintenance.reason == "Draining" then
  return { status = "Progressing", message = said(maintenance, "Draining") }
end
local removal = condition("RemovalBlocked")
if isTrue(removal) then
  return { status = "Progressing", message = said(removal, "Removed hosts still have VMs") }
end
if ready ~= nil and ready.status == "True" then
  return { status = "Healthy", message = said(ready, "Ready") }
end
return { status = "Progressing", message = said(ready, "Waiting for the controller") }
