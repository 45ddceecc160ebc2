-- Argo CD health of a virtfleet.io VirtualMachine, from the conditions its controller writes
-- (docs/controllers.md). Uses no string or os library, so it runs from argocd-cm as it is.
--   Degraded:    the VM needs a person: Stalled=True, or a definition, placement, crash loop,
--                failed health check, blocked recovery or failed install that the controller
--                cannot get past by itself.
--   Suspended:   paused or suspended (phase Paused or Suspended, or a pause or suspend hold:
--                virtfleet.io/action: pause | suspend).
--   Healthy:     Ready=True; or stopped because its runStrategy or a stop hold says so
--                (argo-cd#29663: a VM stopped on purpose in Git is done, not in progress).
--   Progressing: anything else: no status yet, a generation not yet observed, Reconciling=True,
--                starting, placing, provisioning, installing, stopping, waiting for a host.
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

local function isFalseWith(c, reasons)
  return c ~= nil and c.status == "False" and reasons[c.reason] == true
end

if obj.status == nil then
  return { status = "Progressing", message = "Waiting for the controller to report status" }
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  return { status = "Progressing", message = "Waiting for the controller to observe generation " .. tostring(generation) }
end

local phase = obj.status.phase
local ready = condition("Ready")
local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  return { status = "Degraded", message = said(stalled, "Stalled") }
end

if obj.metadata.deletionTimestamp ~= nil then
  return { status = "Progressing", message = said(ready, "Being deleted") }
end

local scheduled = condition("Scheduled")
if isFalseWith(scheduled, { Unschedulable = true, HostPoolNotFound = true }) then
  return { status = "Degraded", message = said(scheduled, scheduled.reason) }
end
local provisioned = condition("Provisioned")
if isFalseWith(provisioned, { InvalidDefinition = true, ProvisioningFailed = true, ImageDownloadFailed = true }) then
  return { status = "Degraded", message = said(provisioned, provisioned.reason) }
end
local installed = condition("Installed")
if isFalseWith(installed, {
  InstallTimedOut = true, InstallFailed = true, ProfileNotFound = true, ProfileNotValid = true,
  InstallEndpointUnavailable = true, InstallMediaFailed = true,
}) then
  return { status = "Degraded", message = said(installed, installed.reason) }
end
if phase == "Failed" or phase == "CrashLoopBackOff" then
  return { status = "Degraded", message = said(ready, phase) }
end
if ready ~= nil and ready.status ~= "True" and ({
  Unschedulable = true, HostPoolNotFound = true, InvalidDefinition = true, CrashLoopBackOff = true,
  Unhealthy = true, RecoveryBlocked = true, LeaseUnavailable = true,
})[ready.reason] then
  return { status = "Degraded", message = said(ready, ready.reason) }
end

local hold = nil
if obj.metadata.annotations ~= nil then
  hold = obj.metadata.annotations["virtfleet.io/action"]
end
if phase == "Paused" or hold == "pause" then
  return { status = "Suspended", message = said(ready, "Paused") }
end
if phase == "Suspended" or hold == "suspend" then
  return { status = "Suspended", message = said(ready, "Suspended") }
end

-- Stopped on purpose: Halted, a stop hold, or (Manual, RerunOnFailure) left stopped as asked.
local runStrategy = obj.spec and obj.spec.runStrategy
local meantToStop = hold == "stop" or runStrategy == "Halted"
if phase == "Stopped" and (meantToStop or (ready ~= nil and (ready.reason == "Stopped" or ready.reason == "StoppedByUser")
    and runStrategy ~= "Always")) then
  return { status = "Healthy", message = said(ready, "Stopped") }
end

local reconciling = condition("Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  return { status = "Progressing", message = said(reconciling, "Reconciling") }
end
if ready ~= nil and ready.status == "True" then
  return { status = "Healthy", message = said(ready, "Running") }
end
return { status = "Progressing", message = said(ready, phase or "Waiting for the controller") }
